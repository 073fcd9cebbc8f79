// Offline cluster tools (no agent needed): `cluster init` creates an admin key, `member add` signs a
// host's membership certificate with one.
import fs from 'node:fs/promises'
import path from 'node:path'
import { Command, InvalidArgumentError } from 'commander'
import { print, printJson, type GlobalOptions } from '../context.js'
import { parseSpan } from './forget.js'
import { writeKeyFile } from './keygen.js'

const ADMIN_KEY_FILE = 'admin.key'

export function clusterCommand (globals: () => GlobalOptions): Command {
  const cluster = new Command('cluster').description('the cluster\'s admin keys (offline: no agent needed)')
  cluster.command('init')
    .description('create the cluster\'s first admin key (keep it off the hosts) and print its admin ID for cluster.admins')
    .requiredOption('--out <dir>', 'folder to write admin.key into (created with mode 0700; the key is never overwritten)')
    .action(async (opts: { out: string }) => {
      const { newAdminKey } = await import('../../membership/certificate.js')
      const dir = path.resolve(opts.out)
      await fs.mkdir(dir, { recursive: true, mode: 0o700 })
      const file = path.join(dir, ADMIN_KEY_FILE)
      const { adminId, bytes } = await newAdminKey()
      await writeKeyFile(file, bytes)
      if (globals().json === true) printJson({ file, adminId })
      else print(`wrote ${file} (mode 0600): keep it off the hosts\nadmin ID: ${adminId}\nput it in every agent's config under "cluster": { "admins": ["${adminId}"] }`)
    })
  return cluster
}

function peerIdArg (v: string): string {
  // checked fully by the certificate itself; this catches a pasted multiaddr early
  if (!/^[1-9A-HJ-NP-Za-km-z]{40,128}$/.test(v)) throw new InvalidArgumentError('must be a peer ID (12D3KooW..., as `snapmesh id` prints it)')
  return v
}

export function memberCommand (globals: () => GlobalOptions): Command {
  const member = new Command('member').description('membership certificates (offline: no agent needed)')
  member.command('add')
    .description('sign a membership certificate for a host with an admin key; the host\'s config points at it (cluster.certificate)')
    .requiredOption('--key <file>', 'the admin key (from `snapmesh cluster init`)')
    .requiredOption('--peer <peerId>', 'the host\'s peer ID (`snapmesh id` on the host)', peerIdArg)
    .requiredOption('--name <name>', 'the host\'s name, as members are listed')
    .option('--expires <span>', 'valid for this long from now (e.g. 90d, 1y); default: no expiry', parseSpan)
    .requiredOption('--out <file>', 'write the certificate here (never overwrites)')
    .action(async (opts: { key: string, peer: string, name: string, expires?: number, out: string }) => {
      const { readAdminKey, signCertificate } = await import('../../membership/certificate.js')
      const { key, adminId } = await readAdminKey(path.resolve(opts.key))
      const now = Date.now()
      const cert = await signCertificate(key, { peerId: opts.peer, name: opts.name, issuedAt: now, ...(opts.expires != null ? { expiresAt: now + opts.expires * 1000 } : {}) })
      const file = path.resolve(opts.out)
      await writeKeyFile(file, cert)
      const expires = opts.expires != null ? new Date(now + opts.expires * 1000).toISOString() : undefined
      if (globals().json === true) printJson({ file, peerId: opts.peer, name: opts.name, admin: adminId, ...(expires != null ? { expiresAt: expires } : {}) })
      else print(`wrote ${file}: membership certificate of ${opts.name} (${opts.peer}) signed by admin ${adminId}${expires != null ? `, expires ${expires}` : ', no expiry'}`)
    })
  return member
}
