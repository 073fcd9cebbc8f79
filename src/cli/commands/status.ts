import { Command } from 'commander'
import { client, print, printJson, type GlobalOptions } from '../context.js'
import { describeStatus } from '../format.js'

export function statusCommand (globals: () => GlobalOptions): Command {
  return new Command('status')
    .description('show the local agent: identity, addresses, peers, snapshots')
    .action(async () => {
      const g = globals()
      const status = await (await client(g)).status()
      if (g.json === true) printJson(status)
      else print(describeStatus(status))
    })
}
