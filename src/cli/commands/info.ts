import { Command } from 'commander'
import { loadOrCreateIdentity } from '../../node/identity.js'
import { table } from '../format.js'
import { client, config, printJson, type GlobalOptions } from '../context.js'

export function idCommand (globals: () => GlobalOptions): Command {
  return new Command('id')
    .description('print this host\'s peer ID (creates the identity in dataDir if needed)')
    .action(async () => {
      const g = globals()
      const { peerId } = await loadOrCreateIdentity((await config(g)).dataDir)
      if (g.json === true) printJson({ peerId: peerId.toString() })
      else process.stdout.write(`${peerId.toString()}\n`)
    })
}

export function statusCommand (globals: () => GlobalOptions): Command {
  return new Command('status')
    .description('show the local agent: identity, addresses, peers, snapshots')
    .action(async () => {
      const g = globals()
      const s = await (await client(g)).status()
      if (g.json === true) { printJson(s); return }
      process.stdout.write([
        `name       ${s.name}`,
        `peer ID    ${s.peerId}`,
        `version    ${s.version}`,
        `uptime     ${s.uptimeSeconds} s`,
        `peers      ${s.peers.connected} connected, ${s.peers.known} known`,
        `snapshots  ${s.snapshots}`,
        `data       ${s.dataDir}`,
        ...s.addresses.map(a => `listening  ${a}`)
      ].join('\n') + '\n')
    })
}

export function peersCommand (globals: () => GlobalOptions): Command {
  return new Command('peers')
    .description('list the cluster members this agent knows')
    .action(async () => {
      const g = globals()
      const peers = await (await client(g)).peers()
      if (g.json === true) { printJson(peers); return }
      process.stdout.write(table(['NAME', 'PEER ID', 'CONNECTED', 'ADDRESS'], peers.map(p => [p.name ?? '?', p.peerId, p.connected ? 'yes' : 'no', p.addresses[0] ?? ''])))
    })
}
