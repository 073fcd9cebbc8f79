import path from 'node:path'
import { Command } from 'commander'
import { ProgressLine, client, print, printJson, type GlobalOptions } from '../context.js'
import { InterruptedError } from '../errors.js'
import { humanBytes, humanDuration, restoreProgressLine } from '../format.js'
import type { RestoreRequest } from '../../admin/api.js'

export function restoreCommand (globals: () => GlobalOptions): Command {
  return new Command('restore')
    .description('restore one participant\'s data from a snapshot into a folder')
    .argument('<snapshot>', 'snapshot ID or a unique prefix of it')
    .requiredOption('--target <dir>', 'folder to restore into, relative to the current one (must be empty or absent)')
    .option('--node <node>', 'peer ID or host name of the participant (default: this host)')
    .option('--include <path>', '<source>/<path> to restore (repeatable; default everything)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--resume', 'continue an interrupted restore of the same snapshot and participant into the same target, keeping complete files')
    .option('--keep-special-bits', 'keep setuid, setgid and sticky bits (setuid and setgid only where the owner is restored)')
    .option('--no-owner', 'do not restore owners (they are restored only when the agent runs as root)')
    .action(async (snapshot: string, opts: { target: string, node?: string, include: string[], resume?: boolean, keepSpecialBits?: boolean, owner?: boolean }) => {
      const g = globals()
      const c = await client(g)
      const req: RestoreRequest = {
        snapshot,
        target: path.resolve(opts.target),
        ...(opts.node != null ? { node: opts.node } : {}),
        ...(opts.include.length > 0 ? { include: opts.include } : {}),
        ...(opts.resume === true ? { resume: true } : {}),
        ...(opts.keepSpecialBits === true ? { keepSpecialBits: true } : {}),
        ...(opts.owner === false ? { noOwner: true } : {})
      }
      const controller = new AbortController()
      const onSigint = (): void => { controller.abort() }
      process.once('SIGINT', onSigint)
      const progress = new ProgressLine()
      const started = Date.now()
      let result
      try {
        result = await c.restore(req, {
          signal: controller.signal,
          onProgress: (ev) => { progress.update(restoreProgressLine(ev, (Date.now() - started) / 1000)) }
        })
      } catch (err) {
        if (controller.signal.aborted) {
          throw new InterruptedError(`restore into ${req.target} interrupted; run it again with --resume to continue`)
        }
        throw err
      } finally {
        process.off('SIGINT', onSigint)
        progress.clear()
      }
      if (g.json === true) {
        printJson(result)
        return
      }
      const kept = result.filesKept > 0 ? `, ${result.filesKept} files kept from before` : ''
      print([
        `restored ${result.name} (${result.peerId}) from snapshot ${result.snapshot.slice(0, 8)} into ${result.target}`,
        `  ${result.files} files, ${result.dirs} dirs, ${result.symlinks} symlinks, ${humanBytes(result.bytes)} in ${humanDuration(result.durationMs / 1000)}; ${result.blocksFetched} blocks fetched from peers${kept}`
      ].join('\n'))
    })
}
