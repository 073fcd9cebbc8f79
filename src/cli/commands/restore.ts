import path from 'node:path'
import { Command } from 'commander'
import { humanBytes } from '../format.js'
import { client, printJson, progressDone, progressLine, type GlobalOptions } from '../context.js'

export function restoreCommand (globals: () => GlobalOptions): Command {
  return new Command('restore')
    .description('restore one participant\'s data from a snapshot into a folder')
    .argument('<snapshot>', 'snapshot ID or a unique prefix of it')
    .requiredOption('--target <dir>', 'folder to restore into (must be empty or absent)')
    .option('--node <node>', 'peer ID or host name of the participant (default: this host)')
    .option('--include <path>', '<source>/<path> to restore (repeatable; default everything)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--resume', 'continue an interrupted restore into the same target, keeping complete files')
    .action(async (snapshot: string, opts: { target: string, node?: string, include: string[], resume?: boolean }) => {
      const g = globals()
      const started = Date.now()
      const controller = new AbortController()
      process.once('SIGINT', () => { controller.abort() })
      const result = await (await client(g)).restore({
        snapshot,
        target: path.resolve(opts.target),
        ...(opts.node != null ? { node: opts.node } : {}),
        ...(opts.include.length > 0 ? { include: opts.include } : {}),
        ...(opts.resume === true ? { resume: true } : {})
      }, {
        signal: controller.signal,
        onProgress: (ev) => {
          if (ev.type !== 'progress') return
          const secs = Math.max(0.001, (Date.now() - started) / 1000)
          const total = ev.totalBytes != null && ev.totalBytes > 0 ? ` of ${humanBytes(ev.totalBytes)} (${Math.floor(100 * ev.bytes / ev.totalBytes)}%)` : ''
          progressLine(`restoring: ${ev.files} files, ${humanBytes(ev.bytes)}${total}, ${humanBytes(ev.bytes / secs)}/s`)
        }
      })
      progressDone()
      if (g.json === true) { printJson(result); return }
      process.stdout.write(`restored ${result.name} (${result.peerId}) from ${result.snapshot.slice(0, 8)} into ${result.target}\n`)
      process.stdout.write(`  ${result.files} files, ${result.dirs} dirs, ${result.symlinks} symlinks, ${humanBytes(result.bytes)} in ${(result.durationMs / 1000).toFixed(1)} s; ${result.blocksFetched} blocks fetched from peers${result.filesKept > 0 ? `, ${result.filesKept} files kept from before` : ''}\n`)
    })
}
