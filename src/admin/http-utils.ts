import { BodyTooLargeError, InvalidJsonError, InvalidRequestError, MethodNotAllowedError, ReadOnlySocketError, RouteNotFoundError } from './errors.js'
import type { ErrorBody } from './api.js'
import type { AbortOptions } from '@libp2p/interface'
import type { IncomingMessage, ServerResponse } from 'node:http'

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024

/** The HTTP status for an error `code` thrown by the backend. */
export function statusForCode (code: string): number {
  if (code === 'ERR_NOT_FOUND') return 404
  if (code === 'ERR_AMBIGUOUS') return 409
  if (code === 'ERR_INVALID_REQUEST' || code.startsWith('ERR_INVALID')) return 400
  return 500
}

/** The HTTP status for any thrown value: the server's own errors carry theirs, others by `code`. */
export function statusForError (err: unknown): number {
  if (err instanceof RouteNotFoundError || err instanceof MethodNotAllowedError || err instanceof BodyTooLargeError ||
    err instanceof InvalidJsonError || err instanceof InvalidRequestError || err instanceof ReadOnlySocketError) {
    return err.status
  }
  return statusForCode(codeOf(err))
}

export function codeOf (err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && code !== '' ? code : 'ERR_INTERNAL'
}

export function messageOf (err: unknown): string {
  const message = (err as { message?: unknown } | undefined)?.message
  return typeof message === 'string' && message !== '' ? message : String(err)
}

export function errorBody (err: unknown): ErrorBody {
  const body: ErrorBody = { error: messageOf(err), code: codeOf(err) }
  if (err instanceof ReadOnlySocketError) return { ...body, socket: err.socket, route: err.route }
  return body
}

export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text))
  })
  res.end(text)
}

/** Answers with `{ error, code }` and the status the error maps to. */
export function sendError (res: ServerResponse, err: unknown): void {
  const headers: Record<string, string> = {}
  if (err instanceof MethodNotAllowedError) headers.allow = err.allowed.join(', ')
  // the rest of an oversized body is not read: the connection cannot carry another request
  if (err instanceof BodyTooLargeError) headers.connection = 'close'
  sendJson(res, statusForError(err), errorBody(err), headers)
}

/**
 * Reads a JSON request body of at most `maxBytes`. An empty body reads as `{}`. A body over the
 * limit fails as soon as the limit is passed; the rest of it is drained and discarded.
 */
export async function readJsonBody (req: IncomingMessage, maxBytes: number, options: AbortOptions = {}): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > maxBytes) {
    req.resume()
    throw new BodyTooLargeError(`request body of ${declared} bytes is over the limit of ${maxBytes} bytes`)
  }
  const text = await new Promise<string>((resolve, reject) => {
    const parts: Buffer[] = []
    let size = 0
    let done = false
    const finish = (err?: Error): void => {
      if (done) return
      done = true
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      options.signal?.removeEventListener('abort', onAbort)
      if (err != null) {
        req.resume()
        reject(err)
      } else {
        resolve(Buffer.concat(parts).toString('utf8'))
      }
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > maxBytes) {
        finish(new BodyTooLargeError(`request body is over the limit of ${maxBytes} bytes`))
        return
      }
      parts.push(chunk)
    }
    const onEnd = (): void => { finish() }
    const onError = (err: Error): void => { finish(err) }
    const onAbort = (): void => { finish(new Error('the request was aborted while its body was read')) }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    options.signal?.addEventListener('abort', onAbort)
  })
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new InvalidJsonError(`request body is not valid JSON: ${messageOf(err)}`)
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
export async function sleep (ms: number, options: AbortOptions = {}): Promise<void> {
  if (options.signal?.aborted === true) return
  await new Promise<void>(resolve => {
    const done = (): void => {
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    options.signal?.addEventListener('abort', done)
  })
}
