import fs from 'node:fs'
import path from 'node:path'
import { AdminClient } from '../admin/client.js'
import type { Config } from '../config/index.js'
import { NoConfigError } from './errors.js'

/** The exit codes of `snapmesh`. */
export const EXIT_OK = 0
/** the command failed; the reason is on stderr */
export const EXIT_FAILURE = 1
/** the command line was wrong */
export const EXIT_USAGE = 2
/** `snapshot create --wait` ended with a snapshot that is not complete; `verify` found problems left */
export const EXIT_INCOMPLETE = 3

export const DEFAULT_CONFIG = 'config/default.json'

/** Options given before or after the command name. */
export interface GlobalOptions {
  socket?: string
  config?: string
  json?: boolean
}

/** `--config`, else $SNAPMESH_CONFIG, else ./config/default.json; absolute against the cwd. */
export function configPath (opts: GlobalOptions): string {
  const env = process.env.SNAPMESH_CONFIG
  return path.resolve(opts.config ?? (env != null && env !== '' ? env : DEFAULT_CONFIG))
}

export async function config (opts: GlobalOptions): Promise<Config> {
  const file = configPath(opts)
  const chosen = opts.config != null || (process.env.SNAPMESH_CONFIG ?? '') !== ''
  if (!chosen && !fs.existsSync(file)) {
    throw new NoConfigError(`no config file at ${file}: name one with --config FILE or $SNAPMESH_CONFIG, or give the agent's socket with --socket PATH`)
  }
  // loaded only when needed: with --socket, the schema and multiaddr code never load
  const { loadConfig } = await import('../config/index.js')
  return loadConfig(file)
}

/** The admin client for `--socket`, else for the socket the config names. */
export async function client (opts: GlobalOptions): Promise<AdminClient> {
  const socketPath = opts.socket != null ? path.resolve(opts.socket) : (await config(opts)).adminSocket
  return new AdminClient({ socketPath })
}

/** JSON for scripts: indented, one value, newline-terminated. */
export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

export function print (text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n')
}

/** A line redrawn in place on stderr, shown only when stderr is a terminal. */
export class ProgressLine {
  private readonly stream: NodeJS.WriteStream
  private readonly enabled: boolean
  private shown = false

  constructor (stream: NodeJS.WriteStream = process.stderr) {
    this.stream = stream
    this.enabled = stream.isTTY === true
  }

  update (text: string): void {
    if (!this.enabled) return
    const width = this.stream.columns ?? 120
    this.stream.write(`\r\x1b[K${text.length >= width ? text.slice(0, width - 1) : text}`)
    this.shown = true
  }

  clear (): void {
    if (!this.shown) return
    this.stream.write('\r\x1b[K')
    this.shown = false
  }
}

/** The version in package.json, found next to dist/. */
export function cliVersion (): string {
  try {
    const file = new URL('../../../package.json', import.meta.url)
    return String(JSON.parse(fs.readFileSync(file, 'utf8')).version)
  } catch {
    return 'unknown'
  }
}
