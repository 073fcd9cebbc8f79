import { InvalidRequestError, MethodNotAllowedError, ReadOnlySocketError, RouteNotFoundError } from './errors.js'
import { codeOf, messageOf, readJsonBody, sendJson, sleep } from './http-utils.js'
import { checkBody, validateAuditVerify, validateCreate, validateForget, validatePrune, validateRestore, validateVerify } from './schemas.js'
import type { AdminBackend, AuditShowRequest, CreateSnapshotRequest, ForgetRequest, ProgressView, PruneRequest, RestoreRequest, SnapshotView, VerifyRequest } from './api.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** the full admin socket, or the read-only one */
export type SocketKind = 'full' | 'read'

export interface RouteContext {
  backend: AdminBackend
  req: IncomingMessage
  res: ServerResponse
  url: URL
  /** the path segments a route's `:param`s matched, in order */
  params: string[]
  maxBodyBytes: number
  /** how often a long-poll asks the backend again */
  pollIntervalMs: number
  /** least time between two progress lines of a stream */
  progressIntervalMs: number
  /** aborts when the client goes away before the answer is complete */
  signal: AbortSignal
  /** which socket the request came on (default 'full') */
  kind?: SocketKind
  socketPath?: string
}

export type RouteHandler = (ctx: RouteContext) => Promise<void>

export interface Route {
  /** path segments after `/v1`; `:name` matches any one segment */
  path: string[]
  methods: Record<string, RouteHandler>
  /**
   * the methods served on the read-only socket, where every other one answers 403; a route that
   * does not list a method here is a write (so a new route is refused there until it says so)
   */
  read?: string[]
}

/** Whether `method` on `route` is served by the read-only socket. */
export function isRead (route: Route, method: string): boolean {
  return route.read?.includes(method) === true
}

/** the longest a `?wait=1` long-poll may be asked to last */
export const MAX_WAIT_SECONDS = 86400
export const DEFAULT_WAIT_SECONDS = 60

function parseWait (url: URL): { wait: boolean, timeoutSeconds: number } {
  const w = url.searchParams.get('wait')
  let wait: boolean
  if (w == null || w === '0' || w === 'false') wait = false
  else if (w === '' || w === '1' || w === 'true') wait = true
  else throw new InvalidRequestError(`query parameter "wait" must be 1, true, 0 or false, not ${JSON.stringify(w)}`)
  const t = url.searchParams.get('timeout')
  const timeoutSeconds = t == null ? DEFAULT_WAIT_SECONDS : Number(t)
  if (t === '' || !Number.isFinite(timeoutSeconds) || timeoutSeconds < 0 || timeoutSeconds > MAX_WAIT_SECONDS) {
    throw new InvalidRequestError(`query parameter "timeout" must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}, not ${JSON.stringify(t)}`)
  }
  return { wait, timeoutSeconds }
}

async function getSnapshot (ctx: RouteContext): Promise<void> {
  const { wait, timeoutSeconds } = parseWait(ctx.url)
  let snap: SnapshotView = await ctx.backend.getSnapshot(ctx.params[0])
  if (wait) {
    const until = Date.now() + timeoutSeconds * 1000
    while (snap.status === 'running' && !ctx.signal.aborted) {
      const left = until - Date.now()
      if (left <= 0) break
      await sleep(Math.min(ctx.pollIntervalMs, left), { signal: ctx.signal })
      if (ctx.signal.aborted) return
      // the full ID from here on, so a prefix that becomes ambiguous meanwhile cannot fail the wait
      snap = await ctx.backend.getSnapshot(snap.id, { poll: true })
    }
  }
  sendJson(ctx.res, 200, snap)
}

/**
 * Streams progress as NDJSON: at most one progress line per interval (the newest wins, and one
 * that would wait for a full socket buffer is replaced by the next), then `done` or `error`.
 */
async function restore (ctx: RouteContext): Promise<void> {
  const req = checkBody<RestoreRequest>(validateRestore, await readJsonBody(ctx.req, ctx.maxBodyBytes, { signal: ctx.signal }))
  const { res } = ctx
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
  const write = (ev: ProgressView): void => {
    if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(ev) + '\n')
  }
  let pending: ProgressView | undefined
  let lastWrite = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let draining = false
  const onDrain = (): void => {
    draining = false
    flush()
  }
  const flush = (): void => {
    timer = undefined
    if (pending == null) return
    if (res.writableNeedDrain) {
      draining = true
      res.once('drain', onDrain)
      return
    }
    const ev = pending
    pending = undefined
    lastWrite = Date.now()
    write(ev)
  }
  const onProgress = (ev: ProgressView): void => {
    pending = ev
    if (timer != null || draining) return
    const wait = lastWrite + ctx.progressIntervalMs - Date.now()
    if (wait <= 0) flush()
    else timer = setTimeout(flush, wait)
  }
  const stopProgress = (): void => {
    clearTimeout(timer)
    res.off('drain', onDrain)
    if (pending != null) write(pending)
    pending = undefined
  }
  try {
    const result = await ctx.backend.restore(req, { signal: ctx.signal, onProgress })
    stopProgress()
    write({ type: 'done', result })
  } catch (err) {
    stopProgress()
    write({ type: 'error', error: messageOf(err), code: codeOf(err) })
  }
  res.end()
}

/** `?since=ISO&limit=N` of GET /v1/audit */
function parseAuditQuery (url: URL): AuditShowRequest {
  const out: AuditShowRequest = {}
  const since = url.searchParams.get('since')
  if (since != null) {
    if (Number.isNaN(Date.parse(since))) throw new InvalidRequestError(`query parameter "since" must be an ISO time, not ${JSON.stringify(since)}`)
    out.since = since
  }
  const limit = url.searchParams.get('limit')
  if (limit != null) {
    const n = Number(limit)
    if (!Number.isSafeInteger(n) || n < 1 || n > 1_000_000) throw new InvalidRequestError(`query parameter "limit" must be an integer from 1 to 1000000, not ${JSON.stringify(limit)}`)
    out.limit = n
  }
  return out
}

/** the backend's audit method, or a 404 when the agent keeps no audit log */
function audit<K extends 'auditShow' | 'auditVerify' | 'auditHeads'> (ctx: RouteContext, name: K): NonNullable<AdminBackend[K]> {
  const fn = ctx.backend[name]
  if (fn == null) throw new RouteNotFoundError('this agent keeps no audit log')
  return fn.bind(ctx.backend) as NonNullable<AdminBackend[K]>
}

export const routes: Route[] = [
  {
    path: ['status'],
    read: ['GET'],
    methods: { GET: async ctx => { sendJson(ctx.res, 200, await ctx.backend.status()) } }
  },
  {
    path: ['peers'],
    read: ['GET'],
    methods: { GET: async ctx => { sendJson(ctx.res, 200, await ctx.backend.peers()) } }
  },
  {
    path: ['snapshots'],
    read: ['GET'],
    methods: {
      GET: async ctx => { sendJson(ctx.res, 200, await ctx.backend.listSnapshots()) },
      POST: async ctx => {
        const body = checkBody<CreateSnapshotRequest>(validateCreate, await readJsonBody(ctx.req, ctx.maxBodyBytes, { signal: ctx.signal }))
        sendJson(ctx.res, 201, await ctx.backend.createSnapshot(body))
      }
    }
  },
  {
    path: ['snapshots', ':id'],
    read: ['GET'],
    methods: { GET: getSnapshot }
  },
  {
    path: ['restore'],
    methods: { POST: restore }
  },
  {
    path: ['verify'],
    // a verify reads; with repair it writes, refused there by the handler
    read: ['POST'],
    methods: {
      POST: async ctx => {
        const body = checkBody<VerifyRequest>(validateVerify, await readJsonBody(ctx.req, ctx.maxBodyBytes, { signal: ctx.signal }))
        if (ctx.kind === 'read' && body.repair === true) throw new ReadOnlySocketError(ctx.socketPath ?? 'socket', 'POST /v1/verify with "repair": true', 'repair writes')
        const report = await ctx.backend.verify(body, { signal: ctx.signal })
        sendJson(ctx.res, 200, report)
      }
    }
  },
  {
    path: ['forget'],
    methods: {
      POST: async ctx => {
        const body = checkBody<ForgetRequest>(validateForget, await readJsonBody(ctx.req, ctx.maxBodyBytes, { signal: ctx.signal }))
        sendJson(ctx.res, 200, await ctx.backend.forget(body, { signal: ctx.signal }))
      }
    }
  },
  {
    path: ['audit'],
    read: ['GET'],
    methods: { GET: async ctx => { sendJson(ctx.res, 200, await audit(ctx, 'auditShow')(parseAuditQuery(ctx.url))) } }
  },
  {
    path: ['audit', 'verify'],
    // a check that changes nothing: served on the read-only socket too
    read: ['POST'],
    methods: {
      POST: async ctx => {
        checkBody(validateAuditVerify, await readJsonBody(ctx.req, ctx.maxBodyBytes, { signal: ctx.signal }))
        sendJson(ctx.res, 200, await audit(ctx, 'auditVerify')({ signal: ctx.signal }))
      }
    }
  },
  {
    path: ['audit', 'heads'],
    read: ['GET'],
    methods: { GET: async ctx => { sendJson(ctx.res, 200, await audit(ctx, 'auditHeads')()) } }
  },
  {
    path: ['prune'],
    methods: {
      POST: async ctx => {
        const body = checkBody<PruneRequest>(validatePrune, await readJsonBody(ctx.req, ctx.maxBodyBytes, { signal: ctx.signal }))
        sendJson(ctx.res, 200, await ctx.backend.prune(body, { signal: ctx.signal }))
      }
    }
  }
]

/** Finds the handler for a method and path, or throws RouteNotFoundError / MethodNotAllowedError. */
export function matchRoute (method: string, pathname: string, table: Route[] = routes): { handler: RouteHandler, params: string[], route: Route } {
  const segments = pathname.split('/').filter(s => s !== '')
  if (segments[0] !== 'v1') throw new RouteNotFoundError(`no route ${pathname}: routes live under /v1`)
  let rest: string[]
  try {
    rest = segments.slice(1).map(s => decodeURIComponent(s))
  } catch {
    throw new RouteNotFoundError(`no route ${pathname}: the path is not valid percent-encoding`)
  }
  for (const route of table) {
    if (route.path.length !== rest.length) continue
    const params: string[] = []
    const ok = route.path.every((p, i) => {
      if (p.startsWith(':')) { params.push(rest[i]); return true }
      return p === rest[i]
    })
    if (!ok) continue
    const handler = route.methods[method]
    if (handler == null) {
      const allowed = Object.keys(route.methods)
      throw new MethodNotAllowedError(`${method} is not allowed on ${pathname} (allowed: ${allowed.join(', ')})`, allowed)
    }
    return { handler, params, route }
  }
  throw new RouteNotFoundError(`no route ${pathname}`)
}
