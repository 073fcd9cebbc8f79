import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { IdentityError } from './errors.js'
import type { PeerId, PrivateKey } from '@libp2p/interface'

export const IDENTITY_FILE = 'identity.key'

export interface Identity {
  privateKey: PrivateKey
  peerId: PeerId
}

/**
 * Loads the host's Ed25519 identity from `<dataDir>/identity.key`, creating it (mode 0600, written
 * to a temporary file, fsynced and renamed) on first use.
 */
export async function loadOrCreateIdentity (dataDir: string): Promise<Identity> {
  const file = path.join(dataDir, IDENTITY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await fs.readFile(file)
  } catch (err: any) {
    if (err.code !== 'ENOENT') throw new IdentityError(`cannot read ${file}: ${String(err.message)}`)
  }
  if (bytes != null) {
    let privateKey: PrivateKey
    try {
      privateKey = privateKeyFromProtobuf(bytes)
    } catch (err: any) {
      throw new IdentityError(`${file} is not a libp2p private key: ${String(err.message)}`)
    }
    if (privateKey.type !== 'Ed25519') throw new IdentityError(`${file} holds a ${privateKey.type} key; snapmesh needs Ed25519`)
    return { privateKey, peerId: peerIdFromPrivateKey(privateKey) }
  }
  const privateKey = await generateKeyPair('Ed25519')
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
  const tmp = `${file}.tmp-${process.pid}`
  const fh = await fs.open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(privateKeyToProtobuf(privateKey))
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    // another process may have created it meanwhile: keep theirs
    await fs.link(tmp, file)
  } catch (err: any) {
    await fs.rm(tmp, { force: true })
    if (err.code === 'EEXIST') return loadOrCreateIdentity(dataDir)
    throw err
  }
  await fs.rm(tmp, { force: true })
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey) }
}
