import { Command } from 'commander'
import { client, print, printJson, type GlobalOptions } from '../context.js'
import { peerTable } from '../format.js'

export function peersCommand (globals: () => GlobalOptions): Command {
  return new Command('peers')
    .description('list the cluster members this agent knows')
    .action(async () => {
      const g = globals()
      const peers = await (await client(g)).peers()
      if (g.json === true) printJson(peers)
      else print(peerTable(peers))
    })
}
