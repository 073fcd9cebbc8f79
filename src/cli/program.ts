import { Command, CommanderError } from 'commander'
import { agentCommand } from './commands/agent.js'
import { auditCommand } from './commands/audit.js'
import { clusterCommand, memberCommand } from './commands/cluster.js'
import { forgetCommand, pruneCommand } from './commands/forget.js'
import { idCommand } from './commands/id.js'
import { keygenCommand } from './commands/keygen.js'
import { peersCommand } from './commands/peers.js'
import { restoreCommand } from './commands/restore.js'
import { snapshotCommand } from './commands/snapshot.js'
import { statusCommand } from './commands/status.js'
import { verifyCommand } from './commands/verify.js'
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, cliVersion, type GlobalOptions } from './context.js'

/** one line, prefixed with the program name */
function errorLine (message: string): string {
  return `snapmesh: ${message.trim().replace(/^error: /, '').split(/\r?\n/).map(l => l.trim()).filter(l => l !== '').join(' ')}\n`
}

/** Errors from commander itself (usage) throw instead of exiting, and print as one line. */
function configure (cmd: Command): void {
  cmd.exitOverride()
  cmd.configureOutput({ outputError: (str, write) => { write(errorLine(str)) } })
  for (const sub of cmd.commands) configure(sub)
}

/** The `snapmesh` command line with every command. */
export function createProgram (): Command {
  const program = new Command('snapmesh')
    .description('consistent, replicated snapshots of a fleet of hosts')
    .version(cliVersion(), '-V, --version')
    .option('--socket <path>', 'the agent\'s admin socket (default: adminSocket from the config)')
    .option('--config <file>', 'config file (default: $SNAPMESH_CONFIG, else ./config/default.json)')
    .option('--json', 'print stable JSON on stdout instead of text')
  const globals = (): GlobalOptions => program.opts<GlobalOptions>()
  program.addCommand(agentCommand(globals))
  program.addCommand(idCommand(globals))
  program.addCommand(statusCommand(globals))
  program.addCommand(peersCommand(globals))
  program.addCommand(snapshotCommand(globals))
  program.addCommand(restoreCommand(globals))
  program.addCommand(verifyCommand(globals))
  program.addCommand(forgetCommand(globals))
  program.addCommand(pruneCommand(globals))
  program.addCommand(auditCommand(globals))
  program.addCommand(keygenCommand(globals))
  program.addCommand(clusterCommand(globals))
  program.addCommand(memberCommand(globals))
  configure(program)
  return program
}

/**
 * Runs the command line `argv` (as process.argv: node, script, args...) and returns the exit
 * code: 0, 1 when the command failed (the reason printed on stderr), 2 for a usage error, or
 * the code a command set (3 for an incomplete snapshot).
 */
export async function run (argv: string[]): Promise<number> {
  try {
    await createProgram().parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE
    const message = (err as Error)?.message
    process.stderr.write(errorLine(typeof message === 'string' && message !== '' ? message : String(err)))
    return EXIT_FAILURE
  }
  return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK
}
