import { Command } from 'commander'
import { configPath, type GlobalOptions } from '../context.js'

export function agentCommand (globals: () => GlobalOptions): Command {
  return new Command('agent')
    .description('run the agent in the foreground until SIGINT or SIGTERM')
    .option('--config <file>', 'config file (default: $SNAPMESH_CONFIG or ./config/default.json)')
    .action(async (opts: { config?: string }) => {
      // loaded only here: the other commands never start libp2p
      const { runAgent } = await import('../../agent.js')
      await runAgent(configPath({ ...globals(), ...(opts.config != null ? { config: opts.config } : {}) }))
    })
}
