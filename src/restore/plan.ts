// Planning a restore: which sources and paths the include selections want, and the walk of the
// manifest into the folders, files and symlinks to create. Each folder's pages are fetched once,
// however often the folder appears in the snapshot; chunk lists are left to the write step, which
// streams them.
import { readDir } from '../capture/index.js'
import { checkEntryName, includeParts, shownPath } from './check.js'
import { InvalidIncludeError } from './errors.js'
import type { Entry, FileEntry, OwnerFields, RootNode, SourceRecord, SymlinkEntry } from '../capture/index.js'
import type { BlockGetter } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** what of a folder is wanted: everything, or only the named children (and what is wanted of them) */
export interface Selection { all: boolean, children: Map<string, Selection>, include?: string, matched: boolean }

const ALL: Selection = { all: true, children: new Map(), matched: true }

/** the include selections as a tree keyed by source name; undefined when everything is wanted */
export function parseIncludes (include: string[] | undefined): Map<string, Selection> | undefined {
  if (include == null || include.length === 0) return undefined
  const sources = new Map<string, Selection>()
  for (const inc of include) {
    const parts = includeParts(inc)
    let level = sources
    let node: Selection | undefined
    for (const part of parts) {
      node = level.get(part)
      if (node == null) {
        node = { all: false, children: new Map(), matched: false }
        level.set(part, node)
      }
      level = node.children
    }
    node!.all = true // eslint-disable-line @typescript-eslint/no-non-null-assertion
    node!.include ??= inc // eslint-disable-line @typescript-eslint/no-non-null-assertion
  }
  return sources
}

function unmatched (level: Map<string, Selection>, out: string[]): string[] {
  for (const node of level.values()) {
    if (node.include != null && !node.matched) out.push(node.include)
    if (!node.all) unmatched(node.children, out)
  }
  return out
}

function firstInclude (sel: Selection): string {
  if (sel.include != null) return sel.include
  for (const child of sel.children.values()) return firstInclude(child)
  return ''
}

export interface WantedSource { source: SourceRecord, dir: CID, sel: Selection }

/** the captured sources the selections want, in the root's order; InvalidIncludeError for a selection of a source that is absent or was not captured */
export function selectSources (root: RootNode, selections: Map<string, Selection> | undefined): WantedSource[] {
  for (const [name, sel] of selections ?? []) {
    const source = root.sources.find(s => s.name === name)
    if (source == null) throw new InvalidIncludeError(`include ${JSON.stringify(sel.include ?? name)}: the snapshot has no source ${JSON.stringify(name)} (it has ${root.sources.map(s => JSON.stringify(s.name)).join(', ') || 'none'})`)
    if (source.dir == null) throw new InvalidIncludeError(`include ${JSON.stringify(sel.include ?? name)}: source ${JSON.stringify(name)} was not captured: ${String(source.error)}`)
    sel.matched = true
  }
  const wanted: WantedSource[] = []
  for (const source of root.sources) {
    if (source.dir == null) continue
    const sel = selections == null ? ALL : selections.get(source.name)
    if (sel != null) wanted.push({ source, dir: source.dir, sel })
  }
  return wanted
}

export interface RestoreTotals {
  files: number
  /** folders, the source folders included */
  dirs: number
  symlinks: number
  bytes: number
}

/**
 * What goes into one folder, in manifest order, with the totals of everything below it. A folder
 * restored in full at several places (the same CID) shares one.
 */
export interface PlannedContents { children: Planned[], totals: RestoreTotals }
export interface PlannedDir { kind: 'dir', name: string, mode: number, mtimeMs: number, owner: OwnerFields, dir: CID, contents: PlannedContents }
export type Planned = PlannedDir | FileEntry | SymlinkEntry
export interface PlannedSource { name: string, mode?: number, mtimeMs?: number, owner: OwnerFields, contents: PlannedContents }

/** the owner fields an entry or source has */
export function ownerFields (from: OwnerFields): OwnerFields {
  const out: OwnerFields = {}
  if (from.uid != null) out.uid = from.uid
  if (from.gid != null) out.gid = from.gid
  if (from.user != null) out.user = from.user
  if (from.group != null) out.group = from.group
  return out
}

export interface RestorePlan {
  sources: PlannedSource[]
  totals: RestoreTotals
}

function addTotals (to: RestoreTotals, from: RestoreTotals): void {
  to.files += from.files
  to.dirs += from.dirs
  to.symlinks += from.symlinks
  to.bytes += from.bytes
}

class Planner {
  /** folders planned in full, by the CID of their first page */
  private readonly full = new Map<string, PlannedContents>()
  /** the entries of folders read for a selection of only some of them (the folders on include paths) */
  private readonly partial = new Map<string, Entry[]>()

  constructor (private readonly blocks: BlockGetter, private readonly options: AbortOptions) {}

  /** a folder's entries: from its pages the first time, as they arrive, and from memory after that */
  private async * read (dir: CID, keep: boolean): AsyncGenerator<Entry> {
    const key = dir.toString()
    const planned = this.full.get(key)
    if (planned != null) {
      for (const child of planned.children) yield child.kind === 'dir' ? { kind: 'dir', name: child.name, mode: child.mode, mtimeMs: child.mtimeMs, ...child.owner, dir: child.dir } : child
      return
    }
    const known = this.partial.get(key)
    if (known != null) {
      yield * known
      return
    }
    const read: Entry[] = []
    for await (const entry of readDir(this.blocks, dir, this.options)) {
      if (keep) read.push(entry)
      yield entry
    }
    if (keep) this.partial.set(key, read)
  }

  /**
   * The selected contents of the folder `dir` at `parts`. Every entry's name is checked as it
   * arrives, selected or not, and an include that goes through something other than a folder is
   * refused.
   */
  async plan (dir: CID, parts: string[], sel: Selection): Promise<PlannedContents> {
    const key = dir.toString()
    if (sel.all) {
      const known = this.full.get(key)
      if (known != null) return known
    }
    const contents: PlannedContents = { children: [], totals: { files: 0, dirs: 0, symlinks: 0, bytes: 0 } }
    const totals = contents.totals
    for await (const entry of this.read(dir, !sel.all)) {
      this.options.signal?.throwIfAborted()
      const childParts = [...parts, entry.name]
      checkEntryName(entry, childParts)
      const childSel = sel.all ? ALL : sel.children.get(entry.name)
      if (childSel == null) continue
      childSel.matched = true
      if (!childSel.all && entry.kind !== 'dir') throw new InvalidIncludeError(`include ${JSON.stringify(firstInclude(childSel))}: ${shownPath(childParts)} is a ${entry.kind}, not a folder`)
      if (entry.kind === 'dir') {
        const inner = await this.plan(entry.dir, childParts, childSel)
        contents.children.push({ kind: 'dir', name: entry.name, mode: entry.mode, mtimeMs: entry.mtimeMs, owner: ownerFields(entry), dir: entry.dir, contents: inner })
        totals.dirs++
        addTotals(totals, inner.totals)
      } else if (entry.kind === 'file') {
        contents.children.push(entry)
        totals.files++
        totals.bytes += entry.size
      } else {
        contents.children.push(entry)
        totals.symlinks++
      }
    }
    if (sel.all) this.full.set(key, contents)
    return contents
  }
}

/**
 * Reads and checks everything selected of the wanted sources, before anything is written: an
 * unsafe name anywhere refuses the restore (UnsafePathError), and so does a selection that
 * matches nothing or goes through a file (InvalidIncludeError).
 */
export async function planRestore (blocks: BlockGetter, wanted: WantedSource[], selections: Map<string, Selection> | undefined, options: AbortOptions = {}): Promise<RestorePlan> {
  const planner = new Planner(blocks, options)
  const totals: RestoreTotals = { files: 0, dirs: 0, symlinks: 0, bytes: 0 }
  const sources: PlannedSource[] = []
  for (const { source, dir, sel } of wanted) {
    const contents = await planner.plan(dir, [source.name], sel)
    totals.dirs++
    addTotals(totals, contents.totals)
    sources.push({ name: source.name, mode: source.mode, mtimeMs: source.mtimeMs, owner: ownerFields(source), contents })
  }
  const missed = selections != null ? unmatched(selections, []) : []
  if (missed.length > 0) throw new InvalidIncludeError(`nothing in the snapshot matches ${missed.map(m => JSON.stringify(m)).join(', ')}`)
  return { sources, totals }
}
