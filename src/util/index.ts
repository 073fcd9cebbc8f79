// Small helpers every folder may use: they import nothing of the product's own.
import type { AbortOptions } from '@libp2p/interface'

/** A signal that aborts when any of the given ones does (undefined entries are skipped). */
export function anySignal (...signals: Array<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s != null))
}

/** `options` with its signal joined to `signal`. */
export function withSignal (signal: AbortSignal, options: AbortOptions = {}): AbortOptions {
  return { ...options, signal: anySignal(signal, options.signal) }
}

/**
 * A task run every `ms` until `signal` aborts; a run still going when the next is due is not
 * started twice. Errors go to `onError`. The timer does not keep the process alive.
 */
export function every (ms: number, signal: AbortSignal, fn: () => unknown, onError: (err: Error) => void): void {
  let running = false
  const t = setInterval(() => {
    if (running || signal.aborted) return
    running = true
    Promise.resolve().then(fn).catch(onError).finally(() => { running = false })
  }, ms)
  t.unref()
  signal.addEventListener('abort', () => { clearInterval(t) }, { once: true })
}

/**
 * A signal that aborts with a TimeoutError after `ms`. Use it instead of AbortSignal.timeout
 * wherever the signal is combined with others: on Node 20 a composite made by AbortSignal.any
 * holds an AbortSignal.timeout weakly, and once garbage collection takes it the composite never
 * aborts (a deadline that never comes). This one is held by its own timer until it fires.
 */
export function timeoutSignal (ms: number): AbortSignal {
  const controller = new AbortController()
  const t = setTimeout(() => { controller.abort(new DOMException(`The operation timed out after ${ms} ms`, 'TimeoutError')) }, ms)
  t.unref()
  return controller.signal
}
