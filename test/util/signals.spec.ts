import assert from 'node:assert/strict'
import v8 from 'node:v8'
import vm from 'node:vm'
import { anySignal, timeoutSignal } from '../../src/util/index.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

describe('util / signals', () => {
  it('a timeout combined with other signals aborts on time even when garbage collection runs meanwhile', async () => {
    const keep: AbortController[] = []
    let fired = 0
    let timedOut = 0
    for (let i = 0; i < 50; i++) {
      const outer = new AbortController()
      keep.push(outer)
      const s = anySignal(outer.signal, timeoutSignal(200))
      s.addEventListener('abort', () => {
        fired++
        if ((s.reason as DOMException)?.name === 'TimeoutError') timedOut++
      }, { once: true })
    }
    const started = Date.now()
    while (Date.now() - started < 700) {
      gc()
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    assert.equal(fired, 50, 'every combined deadline fired')
    assert.equal(timedOut, 50, 'each aborted with a TimeoutError')
    assert.equal(keep.length, 50)
  })

  it('aborts at once with the reason of the first source that aborts', () => {
    const a = new AbortController()
    const s = anySignal(a.signal, timeoutSignal(60_000))
    assert.equal(s.aborted, false)
    a.abort(new Error('stop'))
    assert.equal(s.aborted, true)
    assert.equal((s.reason as Error).message, 'stop')
  })
})
