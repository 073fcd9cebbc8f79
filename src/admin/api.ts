// The admin API's wire types. The agent implements AdminBackend; the HTTP server in this folder
// exposes it on the Unix socket; the client and the CLI speak these types and nothing else.
// Every field here is part of the documented, stable JSON of `snapmesh ... --json`.

export type SnapshotStatus = 'running' | 'complete' | 'partial' | 'failed'

export interface CaptureStatsView {
  files: number
  dirs: number
  symlinks: number
  /** bytes of file content in the snapshot */
  bytes: number
  /** files whose content was read (not reused from the previous snapshot) */
  filesRead: number
  /** files whose chunk list was reused without reading them */
  filesReused: number
  /** bytes read from disk */
  bytesRead: number
  chunks: number
  /** chunks not already in the store */
  newChunks: number
  newBytes: number
  durationMs: number
}

export interface ParticipantView {
  peerId: string
  name: string
  /** 'pending' until a result arrives; 'missing' once the deadline passed without one */
  status: 'ok' | 'error' | 'pending' | 'missing'
  /** manifest root CID (string) when status is 'ok' */
  root?: string
  stats?: CaptureStatsView
  /** per-path problems that did not fail the whole part (unreadable files, missing sources) */
  errors?: Array<{ source: string, path: string, message: string }>
  /** why the part failed, when status is 'error' */
  error?: string
  /**
   * true for a participant that reported without being in the marker's expected list (it joined,
   * or was not connected to the initiator, when the snapshot started); it does not count towards
   * completion
   */
  extra?: true
  /**
   * confirmed copies of this participant's data, every holder counted once: from the newest signed
   * copy report; 1 (the owner's own) when no report has arrived
   */
  copies?: number
  /** the peers that confirmed holding this participant's blocks, per the report */
  holders?: string[]
  /** when the copies were counted (ISO time), and by which agent */
  copiesCountedAt?: string
  copiesCountedBy?: string
}

export interface SnapshotView {
  id: string
  tag?: string
  status: SnapshotStatus
  initiator: string
  lamport: number
  startedAt: string
  deadline: string
  finishedAt?: string
  /** CID of the snapshot record as stored in the DHT (absent while running) */
  recordCid?: string
  participants: ParticipantView[]
  /** why the snapshot is partial or failed */
  reasons?: string[]
  consistency: 'marker' | 'barrier'
  /** a scheduled snapshot: the schedule's name and the slot it fired for (ISO time) */
  schedule?: string
  slot?: string
  /** the copies every participant's data should have (replication.copies of this agent) */
  copiesWanted: number
  /**
   * true once the snapshot is complete or partial and every participant with data has at least
   * `copiesWanted` confirmed copies
   */
  protected: boolean
}

export interface PeerView {
  peerId: string
  name?: string
  addresses: string[]
  connected: boolean
}

export interface StatusView {
  peerId: string
  name: string
  version: string
  addresses: string[]
  uptimeSeconds: number
  peers: { known: number, connected: number }
  snapshots: number
  dataDir: string
  /** the app socket, the apps connected to it, and app cuts still waiting for channel state */
  apps?: { socket: string, connected: string[], pendingCuts: Array<{ id: string, pending: string[] }> }
  /** barrier snapshots this host is frozen for right now */
  frozenFor?: string[]
  /** blocks that reads found corrupt since start (moved to quarantine/), and how many were replaced
   * with a verified copy from another member, given up on, or are still waiting */
  quarantine?: { quarantined: number, replaced: number, failed: number, pending: number }
}

export interface CreateSnapshotRequest {
  tag?: string
  /** default: snapshot.consistency of the agent's config */
  consistency?: 'marker' | 'barrier'
  /** barrier mode: how long participants wait, frozen, for all to prepare (default: from the config) */
  prepareTimeoutSeconds?: number
}

export interface RestoreRequest {
  /** snapshot ID or unique prefix */
  snapshot: string
  /** peer ID or host name of the participant whose data to restore; default: this host */
  node?: string
  /** absolute target folder */
  target: string
  /** paths inside the snapshot (`<source>/<path>`) to restore; default all */
  include?: string[]
  /** continue an interrupted restore into the same target: complete files are kept, not fetched */
  resume?: boolean
  /** keep setuid, setgid and sticky bits (setuid and setgid only where the owner is applied) */
  keepSpecialBits?: boolean
  /** do not apply the recorded owners (they are applied only when the agent runs as root) */
  noOwner?: boolean
}

export interface RestoreResultView {
  snapshot: string
  peerId: string
  name: string
  target: string
  files: number
  dirs: number
  symlinks: number
  bytes: number
  blocksFetched: number
  /** files kept from an interrupted restore (with resume) */
  filesKept: number
  durationMs: number
}

export interface VerifyRequest {
  /** snapshot ID or unique prefix */
  snapshot: string
  /** only this participant (peer ID or host name); default every participant */
  node?: string
  /** fetch every copy and re-hash it on this agent, instead of asking holders to re-hash theirs */
  readData?: boolean
  /** re-make every missing or corrupt copy from a good one */
  repair?: boolean
}

export interface VerifyResultView {
  snapshot: string
  ok: boolean
  participants: Array<{
    peerId: string
    name: string
    blocks: number
    /** copies checked (blocks × holders) */
    copies: number
    problems: Array<{ holder: string, cid: string, path: string, state: 'missing' | 'corrupt' | 'unproven' | 'unreachable', message?: string, repaired?: boolean }>
  }>
}

/** Keep rules of `snapmesh forget` (restic's --keep-* in spirit); counts may be -1 for no limit. */
export interface KeepRules {
  /** the N most recent snapshots */
  last?: number
  /** the newest snapshot of each of the N most recent hours (days, ISO weeks, months, years; UTC) that have one */
  hourly?: number
  daily?: number
  weekly?: number
  monthly?: number
  yearly?: number
  /** every snapshot started at most this many seconds before the newest one */
  withinSeconds?: number
  /** every snapshot with one of these tags */
  tags?: string[]
}

export interface ForgetRequest {
  /** snapshot IDs or unique prefixes to forget; or else `keep` */
  snapshots?: string[]
  /** forget every finished snapshot these rules do not keep (running snapshots are always kept) */
  keep?: KeepRules
  /** say what would be forgotten, forget nothing */
  dryRun?: boolean
  /** then delete the blocks no kept snapshot needs, here and on every agent the notices reach */
  prune?: boolean
}

export interface ForgetResultView {
  dryRun: boolean
  /** the snapshots forgotten (or, in a dry run, that would be), newest first */
  forgotten: Array<{ id: string, tag?: string, startedAt: string, status: SnapshotStatus }>
  /** with keep rules: the snapshots kept and why (e.g. "last", "daily 2026-12-03") */
  kept: Array<{ id: string, tag?: string, startedAt: string, status: SnapshotStatus, reasons: string[] }>
  /** this agent's prune, when asked for */
  prune?: PruneResultView
}

export interface PruneRequest {
  /** count what would be deleted, delete nothing */
  dryRun?: boolean
}

export interface PruneResultView {
  dryRun: boolean
  /** manifest roots walked: every part of every snapshot this agent knows, and its incremental base */
  roots: number
  /** distinct blocks those roots reach */
  referenced: number
  /** blocks in this agent's store before the prune */
  stored: number
  /** blocks deleted (or that would be) */
  deleted: number
  bytesFreed: number
  /** unreferenced blocks kept because they are younger than retention.pruneGraceSeconds */
  young: number
  durationMs: number
}

/** Progress events streamed as NDJSON by long operations. */
export type ProgressView =
  | { type: 'progress', phase: string, files: number, bytes: number, totalBytes?: number }
  | { type: 'done', result: RestoreResultView }
  | { type: 'error', error: string, code?: string }

/** One entry of the agent's audit log (README, "Audit log"), where it lies. */
export interface AuditEntryView {
  seq: number
  time: string
  action: string
  data: Record<string, unknown>
  /** the peer ID whose key signed it */
  signer: string
  /** the log file and 1-based line it is on */
  file: string
  line: number
}

export interface AuditShowRequest {
  /** only entries at or after this ISO time */
  since?: string
  /** at most this many, the newest; default 1000 */
  limit?: number
}

export interface AuditProblemView {
  kind: 'malformed' | 'sequence' | 'chain' | 'signer' | 'signature' | 'truncated' | 'head-mismatch' | 'missing-file' | 'partial-line'
  file?: string
  line?: number
  seq?: number
  message: string
}

export interface AuditVerifyView {
  ok: boolean
  peerId: string
  files: string[]
  entries: number
  lastSeq: number
  lastHash: string
  /** the first problem in log order */
  problem?: AuditProblemView
  problems: AuditProblemView[]
  /** the heads of this log other members hold, and how each compares */
  heads: Array<{ holder: string, seq: number, hash: string, status: 'match' | 'ahead' | 'differs' }>
  /** the members asked for the heads they hold, and those that did not answer */
  asked: string[]
  unreachable: Array<{ peerId: string, error: string }>
  /** members this agent holds two heads with one seq and different hashes of */
  forks: Array<{ peerId: string, seq: number, hashes: string[] }>
}

/** The newest audit head this agent holds of another member. */
export interface AuditHeadView {
  peerId: string
  seq: number
  hash: string
  time: string
  /** other hashes signed for a seq held (a fork) */
  forks: Array<{ seq: number, hash: string }>
}

export interface ErrorBody {
  error: string
  code: string
  /** a write asked for on the read-only socket (403): that socket and the route */
  socket?: string
  route?: string
}

export interface AbortOptionsLike { signal?: AbortSignal }

/**
 * What the admin server needs from the agent. Errors thrown should be instances of the named
 * error classes of the agent's folders; the server maps `code` properties of
 * NotFound/Ambiguous/InvalidRequest errors to 404/409/400 and everything else to 500.
 */
export interface AdminBackend {
  status(): Promise<StatusView>
  peers(): Promise<PeerView[]>
  createSnapshot(req: CreateSnapshotRequest): Promise<SnapshotView>
  listSnapshots(): Promise<SnapshotView[]>
  /** id may be a unique prefix; `poll` marks the repeated asks of one long-poll request */
  getSnapshot(id: string, options?: { poll?: boolean }): Promise<SnapshotView>
  restore(req: RestoreRequest, options: AbortOptionsLike & { onProgress?: (ev: ProgressView) => void }): Promise<RestoreResultView>
  verify(req: VerifyRequest, options: AbortOptionsLike): Promise<VerifyResultView>
  forget(req: ForgetRequest, options: AbortOptionsLike): Promise<ForgetResultView>
  prune(req: PruneRequest, options: AbortOptionsLike): Promise<PruneResultView>
  /** the audit log's entries (an agent without one has no audit routes) */
  auditShow?(req: AuditShowRequest): Promise<AuditEntryView[]>
  /** checks the audit log's chain and signatures, and against the heads other members hold of it */
  auditVerify?(options: AbortOptionsLike): Promise<AuditVerifyView>
  /** the newest audit head held of every other member */
  auditHeads?(): Promise<AuditHeadView[]>
}
