import fs from 'node:fs/promises'
import { generateKey } from '@libp2p/pnet'
import { InvalidPskError } from './errors.js'

const KEY_BYTES = 95 // '/key/swarm/psk/1.0.0/\n/base16/\n' + 64 hex chars

/** A new pre-shared key in the swarm.key text format shared by libp2p implementations. */
export function generatePsk (): Uint8Array {
  const out = new Uint8Array(KEY_BYTES)
  generateKey(out)
  return out
}

/** Reads and checks a swarm.key file. */
export async function readPsk (file: string): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await fs.readFile(file)
  } catch (err: any) {
    throw new InvalidPskError(`cannot read pre-shared key file ${file}: ${String(err.message)}`)
  }
  const lines = bytes.toString('utf8').trim().split(/\r?\n/)
  if (lines.length !== 3 || lines[0] !== '/key/swarm/psk/1.0.0/' || lines[1] !== '/base16/' || !/^[0-9a-fA-F]{64}$/.test(lines[2])) {
    throw new InvalidPskError(`${file} is not a swarm.key file (expected '/key/swarm/psk/1.0.0/', '/base16/' and 64 hex digits; create one with \`snapmesh keygen --psk\`)`)
  }
  return new TextEncoder().encode(`${lines[0]}\n${lines[1]}\n${lines[2].toLowerCase()}`)
}
