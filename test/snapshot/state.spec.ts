import assert from 'node:assert/strict'
import { applyResult, computeStatus, newState, signResult, sortedResults, type SignedResult } from '../../src/snapshot/index.js'
import { errorBody, marker, okBody, peers, prng, root, shuffle } from './fixtures.js'

describe('snapshot / status', () => {
  it('is running before the deadline and complete once every expected participant reported ok, whatever the time', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    let s = newState(m)
    assert.equal(computeStatus(s, 2000).status, 'running')
    s = applyResult(s, await signResult(a.key, okBody(m, a, { time: 3000 })))
    assert.equal(computeStatus(s, 2000).status, 'running')
    s = applyResult(s, await signResult(b.key, okBody(m, b, { time: 4000 })))
    const done = computeStatus(s, 5000)
    assert.deepEqual(done, { status: 'complete', reasons: [], missing: [], failed: [], finishedAt: 4000 })
    assert.deepEqual(computeStatus(s, m.deadline + 999_999), done)
  })

  it('is partial after the deadline when some reported ok, naming each missing and failed participant', async () => {
    const [a, b, c] = await peers(3)
    const m = marker(a.id, [a.id, b.id, c.id])
    let s = applyResult(newState(m), await signResult(a.key, okBody(m, a)))
    s = applyResult(s, await signResult(b.key, errorBody(m, b, 'disk on fire')))
    assert.equal(computeStatus(s, m.deadline - 1).status, 'running')
    const info = computeStatus(s, m.deadline)
    assert.equal(info.status, 'partial')
    assert.equal(info.finishedAt, m.deadline)
    assert.deepEqual(info.failed, [b.id])
    assert.deepEqual(info.missing, [c.id])
    assert.equal(info.reasons.length, 2)
    assert.ok(info.reasons.some(r => r.includes(b.id) && r.includes('disk on fire')))
    assert.ok(info.reasons.some(r => r.includes(c.id) && r.includes('did not report')))
    assert.deepEqual(computeStatus(s, m.deadline + 5_000_000), info, 'only whether the deadline passed matters, not by how much')
  })

  it('is failed after the deadline when nobody reported ok', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    assert.equal(computeStatus(newState(m), m.deadline).status, 'failed')
    const s = applyResult(newState(m), await signResult(a.key, errorBody(m, a, 'no sources readable')))
    const info = computeStatus(s, m.deadline + 1)
    assert.equal(info.status, 'failed')
    assert.deepEqual(info.failed, [a.id])
    assert.deepEqual(info.missing, [b.id])
  })

  it('a late result upgrades failed to partial, and partial to complete', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    let s = applyResult(newState(m), await signResult(a.key, errorBody(m, a, 'busy')))
    assert.equal(computeStatus(s, m.deadline).status, 'failed')
    s = applyResult(s, await signResult(b.key, okBody(m, b, { time: m.deadline + 10 })))
    assert.equal(computeStatus(s, m.deadline + 20).status, 'partial')
    s = applyResult(s, await signResult(a.key, okBody(m, a, { time: m.deadline + 30 })))
    const info = computeStatus(s, m.deadline + 40)
    assert.equal(info.status, 'complete')
    assert.equal(info.finishedAt, m.deadline + 30)
  })

  it('duplicates change nothing; ok beats error; a later result beats an earlier one of the same kind', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    const ok = await signResult(a.key, okBody(m, a, { time: 2000 }))
    const s = applyResult(newState(m), ok)
    assert.equal(applyResult(s, ok), s, 'the same result again returns the same state')
    const laterError = await signResult(a.key, errorBody(m, a, 'x', { time: 9000 }))
    assert.equal(applyResult(s, laterError), s, 'a later error does not replace an ok result')
    const laterOk = await signResult(a.key, okBody(m, a, { time: 3000, root: root(2) }))
    assert.equal(applyResult(s, laterOk).results.get(a.id), laterOk)
    const e1 = await signResult(b.key, errorBody(m, b, 'first', { time: 2000 }))
    const e2 = await signResult(b.key, errorBody(m, b, 'second', { time: 2500 }))
    assert.equal(applyResult(applyResult(s, e2), e1).results.get(b.id), e2)
    assert.equal(s.results.size, 1, 'states are never changed in place')
  })

  it('keeps a result from a peer outside expected as an extra participant without changing the status', async () => {
    const [a, b, x] = await peers(3)
    const m = marker(a.id, [a.id, b.id])
    let s = applyResult(newState(m), await signResult(a.key, okBody(m, a)))
    s = applyResult(s, await signResult(x.key, okBody(m, x)))
    assert.equal(s.results.size, 2)
    assert.ok(s.results.has(x.id))
    assert.equal(computeStatus(s, 2000).status, 'running')
    assert.equal(computeStatus(s, m.deadline).status, 'partial')
    s = applyResult(s, await signResult(b.key, okBody(m, b)))
    assert.equal(computeStatus(s, 2000).status, 'complete')
  })

  it('ignores a result for another snapshot', async () => {
    const [a] = await peers(1)
    const m = marker(a.id, [a.id])
    const other = marker(a.id, [a.id])
    const s = newState(m)
    assert.equal(applyResult(s, await signResult(a.key, okBody(other, a))), s)
  })

  it('any order of the same results gives the same results kept and the same status', async () => {
    const ps = await peers(6)
    const m = marker(ps[0].id, ps.slice(0, 5).map(p => p.id))
    const rnd = prng(42)
    const results: SignedResult[] = []
    for (const p of ps) {
      for (let k = 0; k < 3; k++) {
        const t = 2000 + Math.floor(rnd() * 5) * 1000
        results.push(await signResult(p.key, rnd() < 0.4 ? errorBody(m, p, `failure ${k}`, { time: t }) : okBody(m, p, { time: t, root: root(k) })))
      }
    }
    results.push(results[0], results[4])
    const reference = results.reduce(applyResult, newState(m))
    const times = [2500, m.deadline, m.deadline + 1_000_000]
    const expected = times.map(now => computeStatus(reference, now))
    for (let seed = 1; seed <= 300; seed++) {
      const s = shuffle(results, seed).reduce(applyResult, newState(m))
      assert.deepEqual(sortedResults(s), sortedResults(reference), `seed ${seed}`)
      times.forEach((now, i) => { assert.deepEqual(computeStatus(s, now), expected[i], `seed ${seed}, now ${now}`) })
    }
  })
})
