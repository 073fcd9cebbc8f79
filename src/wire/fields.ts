// Strict field checks for maps decoded from peers. Each throws InvalidMessageError naming the
// field and what is wrong with it.
import { describe, isMap, peerIdProblem } from '../envelope/index.js'
import { InvalidMessageError } from './errors.js'
import { isSnapshotId } from './ids.js'

export { describe }

export type Obj = Record<string, unknown>

export const isObj = isMap

/** `o` without its undefined fields, which dag-cbor refuses to encode. */
export function clean<T extends object> (o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

/** cuts a string to at most `max` UTF-16 units without splitting a surrogate pair */
export function clip (s: string, max: number): string {
  if (s.length <= max) return s
  let end = max
  const c = s.charCodeAt(end - 1)
  if (c >= 0xd800 && c <= 0xdbff) end--
  return s.slice(0, end)
}

export function fail (where: string, field: string, what: string, ...value: unknown[]): never {
  const got = value.length > 0 ? `, got ${describe(value[0])}` : ''
  throw new InvalidMessageError(`${where}: field "${field}" ${what}${got}`, field)
}

export function str (o: Obj, k: string, where: string, max: number): string {
  const v = o[k]
  if (typeof v !== 'string') fail(where, k, 'must be a string', v)
  if (v.length > max) fail(where, k, `must be at most ${max} characters long, got ${v.length}`)
  return v
}

export function optStr (o: Obj, k: string, where: string, max: number): string | undefined {
  return o[k] === undefined ? undefined : str(o, k, where, max)
}

export function uint (o: Obj, k: string, where: string): number {
  const v = o[k]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(where, k, 'must be a non-negative integer', v)
  return v
}

export function optUint (o: Obj, k: string, where: string): number | undefined {
  return o[k] === undefined ? undefined : uint(o, k, where)
}

export function only (o: Obj, known: ReadonlySet<string>, where: string): void {
  for (const k of Object.keys(o)) {
    if (!known.has(k)) throw new InvalidMessageError(`${where}: unknown field "${k}"`, k)
  }
}

export function peerIdField (o: Obj, k: string, where: string): string {
  const problem = peerIdProblem(o[k])
  if (problem != null) throw new InvalidMessageError(`${where}: field "${k}" ${problem}`, k)
  return o[k] as string
}

export function idField (o: Obj, where: string): string {
  if (!isSnapshotId(o.id)) fail(where, 'id', 'must be 64 lowercase hex digits', o.id)
  return o.id
}

export function constField (o: Obj, k: string, value: unknown, where: string): void {
  if (o[k] !== value) fail(where, k, `must be ${JSON.stringify(value)}`, o[k])
}
