import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {
  HookFailedError, HookTimeoutError, InvalidCommandError, KILL_GRACE_MS, STDERR_TAIL_BYTES,
  commandArgv, runHook, runPostHooks, runPreHooks, startCommand
} from '../../src/hooks/index.js'
import { alive, killAll, lines, readPid } from './fixtures.js'
import type { HookedSource } from '../../src/hooks/index.js'

describe('hooks', function () {
  this.timeout(30_000)
  let dir: string
  let log: string
  /** processes a test started in the background, killed after it whatever happened */
  let leftovers: number[]

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-hooks-'))
    log = path.join(dir, 'log')
    leftovers = []
  })

  afterEach(async () => {
    killAll(leftovers)
    await fs.rm(dir, { recursive: true, force: true })
  })

  /** a hook that appends `word` to the log */
  const note = (word: string): { command: string[] } => ({ command: ['sh', '-c', `echo ${word} >> "${log}"`] })

  describe('commands', () => {
    it('runs an argv list without a shell and a string through /bin/sh -c', () => {
      assert.deepEqual(commandArgv(['pg_dump', '--file=$HOME', 'a b']), ['pg_dump', '--file=$HOME', 'a b'])
      assert.deepEqual(commandArgv('pg_dump mydb | gzip'), ['/bin/sh', '-c', 'pg_dump mydb | gzip'])
      assert.throws(() => commandArgv([]), InvalidCommandError)
      assert.throws(() => commandArgv(['']), InvalidCommandError)
      assert.throws(() => commandArgv('  '), InvalidCommandError)
    })

    it('an argument with shell syntax reaches the program verbatim', async () => {
      const out = path.join(dir, 'args')
      await runHook({ name: 's', pre: { command: ['node', '-e', 'require("fs").writeFileSync(process.argv[1], process.argv[2])', out, '$(touch pwned); `x`'] } }, 'pre')
      assert.equal(await fs.readFile(out, 'utf8'), '$(touch pwned); `x`')
      await assert.rejects(fs.stat(path.join(process.cwd(), 'pwned')), { code: 'ENOENT' })
    })
  })

  describe('runHook', () => {
    it('runs in the source cwd with the source name and phase in the environment', async () => {
      const cwd = path.join(dir, 'work')
      await fs.mkdir(cwd)
      await runHook({ name: 'db', cwd, pre: { command: 'echo "$SNAPMESH_SOURCE $SNAPMESH_HOOK $(pwd)" > out' } }, 'pre')
      assert.equal(await fs.readFile(path.join(cwd, 'out'), 'utf8'), `db pre ${await fs.realpath(cwd)}\n`)
    })

    it('a source without the hook does nothing', async () => {
      await runHook({ name: 'db' }, 'pre')
      await runHook({ name: 'db', pre: note('pre') }, 'post')
      assert.deepEqual(await lines(log), [])
    })

    it('a non-zero exit fails with the exit code and the stderr text', async () => {
      await assert.rejects(runHook({ name: 'db', pre: { command: 'echo flushing; echo "cannot lock tables: busy" >&2; exit 3' } }, 'pre'), (err: any) => {
        assert.ok(err instanceof HookFailedError)
        assert.equal(err.code, 'ERR_HOOK_FAILED')
        assert.equal(err.exitCode, 3)
        assert.equal(err.source, 'db')
        assert.equal(err.stderr, 'cannot lock tables: busy')
        assert.equal(err.message, 'source "db": pre hook exited with code 3: cannot lock tables: busy')
        return true
      })
    })

    it('a hook killed by a signal fails and names the signal', async () => {
      await assert.rejects(runHook({ name: 'db', post: { command: 'kill -9 $$' } }, 'post'), (err: any) => {
        assert.ok(err instanceof HookFailedError)
        assert.equal(err.signal, 'SIGKILL')
        assert.match(err.message, /^source "db": post hook was killed by SIGKILL: \(nothing on stderr\)$/)
        return true
      })
    })

    it('a program that does not exist fails as a hook that could not be started', async () => {
      await assert.rejects(runHook({ name: 'db', pre: { command: [path.join(dir, 'no-such-program')] } }, 'pre'), (err: any) => {
        assert.ok(err instanceof HookFailedError)
        assert.match(err.message, /pre hook could not be started: .*ENOENT/)
        return true
      })
    })

    it('keeps only the end of a long stderr, in the error and its message', async () => {
      const script = 'for i in $(seq 1 3000); do echo "noise line $i" >&2; done; echo "the real reason" >&2; exit 1'
      await assert.rejects(runHook({ name: 'db', pre: { command: script } }, 'pre'), (err: any) => {
        assert.ok(Buffer.byteLength(err.stderr) <= STDERR_TAIL_BYTES)
        assert.ok(err.stderr.endsWith('noise line 3000\nthe real reason'))
        assert.ok(!err.stderr.includes('noise line 1\n'))
        assert.ok(err.message.endsWith('the real reason'))
        assert.ok(err.message.length < 4096, 'fits in a result error')
        return true
      })
    })

    it('a timeout kills the whole process group, grandchildren included, and reports a timeout', async () => {
      const pidFile = path.join(dir, 'pid')
      const p = runHook({ name: 'db', pre: { command: `sleep 60 & echo $! > "${pidFile}"; echo "waiting for the lock" >&2; wait`, timeoutSeconds: 0.5 } }, 'pre')
      const grandchild = await readPid(pidFile)
      leftovers.push(grandchild)
      assert.ok(alive(grandchild))
      await assert.rejects(p, (err: any) => {
        assert.ok(err instanceof HookTimeoutError)
        assert.equal(err.code, 'ERR_HOOK_TIMEOUT')
        assert.match(err.message, /^source "db": pre hook ran longer than its timeout of 0\.5 s and was killed: waiting for the lock$/)
        return true
      })
      assert.equal(alive(grandchild), false, 'the background sleep was killed with its parent')
    })

    it('a group that ignores SIGTERM is killed with SIGKILL after the grace period', async () => {
      const pidFile = path.join(dir, 'pid')
      const p = runHook({ name: 'db', pre: { command: `trap '' TERM; sleep 60 & echo $! > "${pidFile}"; wait; wait`, timeoutSeconds: 0.3 } }, 'pre')
      const grandchild = await readPid(pidFile)
      leftovers.push(grandchild)
      await assert.rejects(p, HookTimeoutError)
      assert.equal(alive(grandchild), false)
      assert.ok(KILL_GRACE_MS > 0)
    })

    it('an abort kills the hook and throws the abort reason', async () => {
      const pidFile = path.join(dir, 'pid')
      const controller = new AbortController()
      const p = runHook({ name: 'db', pre: { command: `sleep 60 & echo $! > "${pidFile}"; wait` } }, 'pre', { signal: controller.signal })
      const grandchild = await readPid(pidFile)
      leftovers.push(grandchild)
      controller.abort()
      await assert.rejects(p, { name: 'AbortError' })
      assert.equal(alive(grandchild), false)
    })

    it('a hook that leaves a process running with its stderr open still completes', async () => {
      const pidFile = path.join(dir, 'pid')
      // the background sleep keeps the stderr pipe open; the hook itself is done at once
      await runHook({ name: 'db', post: { command: `sleep 60 & echo $! > "${pidFile}"; exit 0`, timeoutSeconds: 20 } }, 'post')
      const background = await readPid(pidFile)
      leftovers.push(background)
      assert.ok(alive(background), 'what a successful hook starts is left alone')
    })
  })

  describe('runPreHooks and runPostHooks', () => {
    const sources = (): HookedSource[] => [
      { name: 'a', pre: note('pre-a'), post: note('post-a') },
      { name: 'b', post: note('post-b') },
      { name: 'c', pre: note('pre-c'), post: note('post-c') }
    ]

    it('run every pre hook in order, and every post hook in reverse order', async () => {
      await runPreHooks(sources())
      assert.deepEqual(await lines(log), ['pre-a', 'pre-c'])
      assert.deepEqual(await runPostHooks(sources()), [])
      assert.deepEqual(await lines(log), ['pre-a', 'pre-c', 'post-c', 'post-b', 'post-a'])
    })

    it('a failing pre hook stops the rest, runs the post hooks of every source reached (its own too) and throws with its stderr', async () => {
      const list: HookedSource[] = [
        { name: 'a', pre: note('pre-a'), post: note('post-a') },
        { name: 'b', pre: { command: `echo pre-b >> "${log}"; echo "fsfreeze: /srv: busy" >&2; exit 1` }, post: note('post-b') },
        { name: 'c', pre: note('pre-c'), post: note('post-c') }
      ]
      await assert.rejects(runPreHooks(list), (err: any) => {
        assert.ok(err instanceof HookFailedError)
        assert.equal(err.source, 'b')
        assert.match(err.message, /source "b": pre hook exited with code 1: fsfreeze: \/srv: busy/)
        return true
      })
      assert.deepEqual(await lines(log), ['pre-a', 'pre-b', 'post-b', 'post-a'])
    })

    it('a post hook that fails while cleaning up after a failed pre hook is named in the error', async () => {
      const list: HookedSource[] = [
        { name: 'a', pre: note('pre-a'), post: { command: 'echo "cannot thaw" >&2; exit 2' } },
        { name: 'b', pre: { command: 'exit 1' } }
      ]
      await assert.rejects(runPreHooks(list), /source "b": pre hook exited with code 1: \(nothing on stderr\); then source "a": post hook exited with code 2: cannot thaw/)
    })

    it('an abort during the pre hooks kills the running one and still runs the post hooks reached', async () => {
      const controller = new AbortController()
      const list: HookedSource[] = [
        { name: 'a', pre: note('pre-a'), post: note('post-a') },
        { name: 'b', pre: { command: `echo pre-b >> "${log}"; sleep 60` }, post: note('post-b') }
      ]
      const p = runPreHooks(list, { signal: controller.signal })
      while (!(await lines(log)).includes('pre-b')) await new Promise(resolve => setTimeout(resolve, 20))
      controller.abort()
      await assert.rejects(p, { name: 'AbortError' })
      assert.deepEqual(await lines(log), ['pre-a', 'pre-b', 'post-b', 'post-a'])
    })

    it('every post hook runs even when one fails; the failures are returned', async () => {
      const list: HookedSource[] = [
        { name: 'a', post: note('post-a') },
        { name: 'b', post: { command: 'echo "thaw failed" >&2; exit 4' } },
        { name: 'c', post: note('post-c') }
      ]
      const failures = await runPostHooks(list)
      assert.deepEqual(failures.map(f => [f.source, f.exitCode, f.stderr]), [['b', 4, 'thaw failed']])
      assert.deepEqual(await lines(log), ['post-c', 'post-a'])
    })

    it('a bad hook anywhere is refused before any hook runs', async () => {
      const list: HookedSource[] = [
        { name: 'a', pre: note('pre-a') },
        { name: 'b', post: { command: [] } }
      ]
      await assert.rejects(runPreHooks(list), (err: any) => err instanceof InvalidCommandError && /source "b": post hook/.test(err.message))
      await assert.rejects(runPreHooks([{ name: 'a', pre: { command: ['true'], timeoutSeconds: 0 } }]), /timeoutSeconds must be a positive number/)
      assert.deepEqual(await lines(log), [])
    })
  })

  describe('startCommand', () => {
    it('streams standard output to the caller and reports the exit', async () => {
      const running = startCommand({ command: ['sh', '-c', 'printf hello; echo oops >&2; exit 5'], timeoutMs: 10_000, stdout: true })
      let out = ''
      for await (const piece of running.stdout as AsyncIterable<Buffer>) out += piece.toString()
      const outcome = await running.done
      assert.equal(out, 'hello')
      assert.equal(outcome.exitCode, 5)
      assert.equal(outcome.stderr.text(), 'oops')
    })
  })
})
