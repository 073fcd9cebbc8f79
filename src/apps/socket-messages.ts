// The app socket's lines: one JSON object per line, in both directions. Requests from apps are
// checked with ajv, one schema per `type`, so an error names the field that is wrong.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { InvalidAppRequestError } from './errors.js'

const appName = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } as const
const base64 = { type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$' } as const
const requestId = { type: 'string', minLength: 1, maxLength: 128 } as const
const snapshotId = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const

export const appRequestSchemas = {
  hello: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'v', 'app'],
    properties: { type: { const: 'hello' }, v: { const: 1 }, app: appName, token: { type: 'string', minLength: 1, maxLength: 4096 } }
  },
  send: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'to', 'payload'],
    properties: { type: { const: 'send' }, id: requestId, to: { type: 'string', minLength: 1, maxLength: 128 }, app: appName, payload: base64 }
  },
  state: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'snapshot'],
    properties: { type: { const: 'state' }, snapshot: snapshotId, state: base64, error: { type: 'string', maxLength: 4096 } }
  },
  restore: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'snapshot'],
    properties: { type: { const: 'restore' }, id: requestId, snapshot: { type: 'string', pattern: '^[0-9a-f]{4,64}$' }, node: { type: 'string', minLength: 1, maxLength: 256 } }
  }
} as const

export interface HelloRequest { type: 'hello', v: 1, app: string, token?: string }
export interface SendRequest { type: 'send', id: string, to: string, app?: string, payload: string }
export interface StateReply { type: 'state', snapshot: string, state?: string, error?: string }
export interface RestoreRequest { type: 'restore', id: string, snapshot: string, node?: string }
export type AppRequest = HelloRequest | SendRequest | StateReply | RestoreRequest

/** what the agent writes to an app */
export type AgentEvent =
  | { type: 'welcome', v: 1, app: string, peerId: string, name: string }
  | { type: 'sent', id: string, message: string }
  | { type: 'message', from: { peer: string, app: string }, id: string, payload: string }
  | { type: 'state-request', snapshot: string }
  | { type: 'restored', id: string, snapshot: string, node: string, state: string, messages: Array<{ from: { peer: string, app: string }, id: string, payload: string }> }
  | { type: 'error', id?: string, error: string, code: string, field?: string }

const ajv = new Ajv({ allErrors: false, strict: true })
const validators = new Map<string, ValidateFunction>(Object.entries(appRequestSchemas).map(([k, s]) => [k, ajv.compile(s)]))

function fieldOf (err: ErrorObject): string {
  if (err.keyword === 'additionalProperties') return String((err.params as { additionalProperty: string }).additionalProperty)
  if (err.keyword === 'required') return String((err.params as { missingProperty: string }).missingProperty)
  return err.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(line)'
}

function messageOf (err: ErrorObject): string {
  if (err.keyword === 'additionalProperties') return 'unknown field'
  if (err.keyword === 'required') return 'is required'
  if (err.keyword === 'pattern') {
    const p = (err.params as { pattern: string }).pattern
    if (p.startsWith('^[A-Za-z0-9+/]')) return 'must be base64'
    if (p.startsWith('^[0-9a-f]{64}')) return 'must be a snapshot ID (64 lowercase hex digits)'
    if (p.startsWith('^[0-9a-f]{4')) return 'must be a snapshot ID or a prefix of at least 4 of its hex digits'
    return 'must be an app name: a letter or digit, then letters, digits, ".", "_" or "-", at most 64 in all'
  }
  return err.message ?? 'is invalid'
}

/** One line from an app, parsed and checked. Throws InvalidAppRequestError naming the field. */
export function parseAppRequest (line: string): AppRequest {
  let o: unknown
  try {
    o = JSON.parse(line)
  } catch (err: any) {
    throw new InvalidAppRequestError(`line is not JSON: ${String(err.message)}`)
  }
  if (o == null || typeof o !== 'object' || Array.isArray(o)) throw new InvalidAppRequestError('line must be a JSON object')
  const type = (o as { type?: unknown }).type
  const validate = typeof type === 'string' ? validators.get(type) : undefined
  if (validate == null) throw new InvalidAppRequestError(`field "type" must be one of ${[...validators.keys()].map(k => JSON.stringify(k)).join(', ')}, got ${JSON.stringify(type) ?? 'nothing'}`, 'type')
  if (!validate(o)) {
    const err = validate.errors?.[0]
    if (err == null) throw new InvalidAppRequestError(`invalid ${type} request`)
    const field = fieldOf(err)
    throw new InvalidAppRequestError(`${type} request: field "${field}" ${messageOf(err)}`, field)
  }
  return o as AppRequest
}

/**
 * Splits a byte stream into lines of at most `maxBytes`. A longer line is reported through
 * `onTooLong` (once, with its length so far) and skipped up to its newline; later lines are not
 * affected.
 */
export class LineSplitter {
  private parts: Buffer[] = []
  private size = 0
  private skipping = false
  private readonly maxBytes: number
  private readonly onLine: (line: string) => void
  private readonly onTooLong: (bytes: number) => void

  constructor (maxBytes: number, onLine: (line: string) => void, onTooLong: (bytes: number) => void) {
    this.maxBytes = maxBytes
    this.onLine = onLine
    this.onTooLong = onTooLong
  }

  push (chunk: Buffer): void {
    let start = 0
    while (start < chunk.length) {
      const nl = chunk.indexOf(10, start)
      const end = nl < 0 ? chunk.length : nl
      if (!this.skipping) {
        const piece = chunk.subarray(start, end)
        if (this.size + piece.length > this.maxBytes) {
          this.onTooLong(this.size + piece.length)
          this.parts = []
          this.size = 0
          this.skipping = true
        } else {
          this.parts.push(piece)
          this.size += piece.length
        }
      }
      if (nl < 0) return
      if (!this.skipping) {
        const line = Buffer.concat(this.parts, this.size).toString('utf8')
        this.parts = []
        this.size = 0
        if (line.trim() !== '') this.onLine(line)
      }
      this.skipping = false
      start = nl + 1
    }
  }
}
