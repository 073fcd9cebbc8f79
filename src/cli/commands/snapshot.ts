import { Command, InvalidArgumentError } from 'commander'
import { describeSnapshot, okCount, shortTime, table } from '../format.js'
import { client, printJson, progressDone, progressLine, type GlobalOptions } from '../context.js'
import type { SnapshotView } from '../../admin/api.js'

/** exit code of `snapshot create --wait` when the snapshot did not complete */
export const EXIT_INCOMPLETE = 3

function seconds (v: string): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds')
  return n
}

export function snapshotCommand (globals: () => GlobalOptions): Command {
  const cmd = new Command('snapshot').description('create, list and show snapshots')

  cmd.command('create')
    .description('start a snapshot of the whole cluster from this agent')
    .option('--tag <tag>', 'a label for the snapshot')
    .option('--wait', 'wait until every participant reported or the deadline passed')
    .option('--timeout <seconds>', 'how long --wait waits at most', seconds, 3600)
    .action(async (opts: { tag?: string, wait?: boolean, timeout: number }) => {
      const g = globals()
      const c = await client(g)
      let snap = await c.createSnapshot(opts.tag != null ? { tag: opts.tag } : {})
      if (opts.wait === true) {
        const until = Date.now() + opts.timeout * 1000
        while (snap.status === 'running' && Date.now() < until) {
          progressLine(`snapshot ${snap.id.slice(0, 8)}: ${okCount(snap)} participants done`)
          snap = await c.getSnapshot(snap.id, { wait: true, timeoutSeconds: Math.min(1, Math.max(0, (until - Date.now()) / 1000)) })
        }
        progressDone()
      }
      if (g.json === true) printJson(snap)
      else if (opts.wait === true) process.stdout.write(describeSnapshot(snap))
      else process.stdout.write(`${snap.id}\n`)
      if (opts.wait === true && snap.status !== 'complete') process.exitCode = EXIT_INCOMPLETE
    })

  cmd.command('list')
    .description('list the snapshots this agent knows, newest first')
    .action(async () => {
      const g = globals()
      const list = await (await client(g)).listSnapshots()
      if (g.json === true) { printJson(list); return }
      process.stdout.write(table(['ID', 'STARTED', 'TAG', 'STATUS', 'OK'], list.map((s: SnapshotView) => [s.id.slice(0, 8), shortTime(s.startedAt), s.tag ?? '', s.status, okCount(s)])))
    })

  cmd.command('show')
    .description('show one snapshot: participants, manifest roots, stats, problems')
    .argument('<id>', 'snapshot ID or a unique prefix of it')
    .action(async (id: string) => {
      const g = globals()
      const snap = await (await client(g)).getSnapshot(id)
      if (g.json === true) printJson(snap)
      else process.stdout.write(describeSnapshot(snap))
    })

  return cmd
}
