import { Command } from 'commander'
import { config, print, printJson, type GlobalOptions } from '../context.js'

export function idCommand (globals: () => GlobalOptions): Command {
  return new Command('id')
    .description('print this host\'s peer ID (creates the identity in the config\'s dataDir if needed; needs no agent)')
    .action(async () => {
      const g = globals()
      const { dataDir } = await config(g)
      const { loadOrCreateIdentity } = await import('../../node/identity.js')
      const { peerId } = await loadOrCreateIdentity(dataDir)
      if (g.json === true) printJson({ peerId: peerId.toString() })
      else print(peerId.toString())
    })
}
