import path from 'node:path'
import { AdminClient } from '../admin/client.js'
import { loadConfig, type Config } from '../config/index.js'

export interface GlobalOptions {
  socket?: string
  config?: string
  json?: boolean
}

export function configPath (opts: GlobalOptions): string {
  return path.resolve(opts.config ?? process.env.SNAPMESH_CONFIG ?? 'config/default.json')
}

export async function config (opts: GlobalOptions): Promise<Config> {
  return loadConfig(configPath(opts))
}

/** The admin client for `--socket`, else for the socket named by the config. */
export async function client (opts: GlobalOptions): Promise<AdminClient> {
  const socketPath = opts.socket != null ? path.resolve(opts.socket) : (await config(opts)).adminSocket
  return new AdminClient({ socketPath })
}

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

/** A one-line progress display on stderr, only when stderr is a terminal. */
export function progressLine (text: string): void {
  if (process.stderr.isTTY !== true) return
  process.stderr.write(`\r\x1b[K${text}`)
}

export function progressDone (): void {
  if (process.stderr.isTTY === true) process.stderr.write('\r\x1b[K')
}
