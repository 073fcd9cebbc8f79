#!/usr/bin/env node
import '../polyfill.js'
import { Command, CommanderError } from 'commander'
import { idCommand, peersCommand, statusCommand } from './commands/info.js'
import { keygenCommand } from './commands/keygen.js'
import { restoreCommand } from './commands/restore.js'
import { snapshotCommand } from './commands/snapshot.js'
import { verifyCommand } from './commands/verify.js'
import { configPath, type GlobalOptions } from './context.js'

const program = new Command('snapmesh')
  .description('consistent, replicated snapshots of a fleet of hosts')
  .option('--socket <path>', 'the agent\'s admin socket (default: from the config)')
  .option('--config <file>', 'config file (default: $SNAPMESH_CONFIG or ./config/default.json)')
  .option('--json', 'print stable JSON instead of text')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => { write(`snapmesh: ${str.replace(/^error: /, '')}`) } })

const globals = (): GlobalOptions => program.opts<GlobalOptions>()

program.command('agent')
  .description('run the agent until SIGINT or SIGTERM')
  .option('--config <file>', 'config file')
  .action(async (opts: { config?: string }) => {
    const { runAgent } = await import('../agent.js')
    await runAgent(opts.config ?? configPath(globals()))
  })
program.addCommand(idCommand(globals))
program.addCommand(statusCommand(globals))
program.addCommand(peersCommand(globals))
program.addCommand(snapshotCommand(globals))
program.addCommand(restoreCommand(globals))
program.addCommand(verifyCommand(globals))
program.addCommand(keygenCommand(globals))
for (const c of program.commands) c.exitOverride().configureOutput({ outputError: (str, write) => { write(`snapmesh: ${str.replace(/^error: /, '')}`) } })
for (const c of program.commands.flatMap(c => c.commands)) c.exitOverride().configureOutput({ outputError: (str, write) => { write(`snapmesh: ${str.replace(/^error: /, '')}`) } })

try {
  await program.parseAsync(process.argv)
} catch (err: any) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2
  } else {
    process.stderr.write(`snapmesh: ${String(err?.message ?? err)}\n`)
    process.exitCode = 1
  }
}
