// Times a peer states are its claims: none may lie further ahead of this agent's clock than the
// configured skew, or it would stay the "newest" for as long as the lie lasts.
import { FutureDatedError } from './errors.js'

/** `network.maxClockSkewSeconds` unless the config says otherwise */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 300_000

/** Throws FutureDatedError when `time` is more than `maxSkewMs` ahead of `now`. */
export function checkNotFuture (time: number, now: number, maxSkewMs: number, what: string, field: string): void {
  if (time > now + maxSkewMs) {
    throw new FutureDatedError(`${what}: field "${field}" is ${Math.round((time - now) / 1000)} s ahead of this agent's clock, more than the ${Math.round(maxSkewMs / 1000)} s allowed (network.maxClockSkewSeconds)`, field)
  }
}
