import { Command } from 'commander'
import { EXIT_INCOMPLETE, client, print, printJson, type GlobalOptions } from '../context.js'
import { describeVerify } from '../format.js'

export function verifyCommand (globals: () => GlobalOptions): Command {
  return new Command('verify')
    .description('check that every block of a snapshot is intact at every holder')
    .argument('<snapshot>', 'snapshot ID or a unique prefix of it')
    .option('--node <node>', 'only this participant (peer ID or host name)')
    .option('--read-data', 'fetch every copy and re-hash it here, instead of asking holders to re-hash theirs')
    .option('--repair', 're-make every missing or corrupt copy from a good one')
    .action(async (snapshot: string, opts: { node?: string, readData?: boolean, repair?: boolean }) => {
      const g = globals()
      const report = await (await client(g)).verify({
        snapshot,
        ...(opts.node != null ? { node: opts.node } : {}),
        ...(opts.readData === true ? { readData: true } : {}),
        ...(opts.repair === true ? { repair: true } : {})
      })
      if (g.json === true) printJson(report)
      else print(describeVerify(report))
      if (!report.ok) process.exitCode = EXIT_INCOMPLETE
    })
}
