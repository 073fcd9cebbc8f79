import { Command, InvalidArgumentError } from 'commander'
import { client, print, printJson, type GlobalOptions } from '../context.js'
import { describeForget, describePrune } from '../format.js'
import type { KeepRules } from '../../admin/api.js'

/** a count of snapshots or periods to keep: a whole number, or -1 for all */
function count (v: string): number {
  const n = Number(v)
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < -1) throw new InvalidArgumentError('must be a whole number of 0 or more, or -1 for all')
  return n
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400, y: 365 * 86400 }

/** `90m`, `36h`, `2d12h`, `1w`, `1y`: a span of time in seconds */
export function parseSpan (v: string): number {
  const parts = [...v.matchAll(/(\d+)([smhdwy])/g)]
  if (v.trim() === '' || parts.map(p => p[0]).join('') !== v) {
    throw new InvalidArgumentError('must be a span such as 90m, 36h, 2d12h, 1w or 1y (units s, m, h, d, w, y)')
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_SECONDS[p[2]], 0)
}

function collect (v: string, prev: string[] = []): string[] {
  return [...prev, v]
}

interface ForgetOptions {
  keepLast?: number
  keepHourly?: number
  keepDaily?: number
  keepWeekly?: number
  keepMonthly?: number
  keepYearly?: number
  keepWithin?: number
  keepTag?: string[]
  dryRun?: boolean
  prune?: boolean
}

export function forgetCommand (globals: () => GlobalOptions): Command {
  return new Command('forget')
    .description('forget snapshots by ID, or every finished snapshot the --keep-* rules do not keep, on every agent')
    .argument('[snapshots...]', 'snapshot IDs or unique prefixes of them')
    .option('--keep-last <n>', 'keep the n most recent snapshots', count)
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the n most recent hours that have one (UTC)', count)
    .option('--keep-daily <n>', 'the same per day', count)
    .option('--keep-weekly <n>', 'the same per ISO week', count)
    .option('--keep-monthly <n>', 'the same per month', count)
    .option('--keep-yearly <n>', 'the same per year', count)
    .option('--keep-within <span>', 'keep every snapshot started within this span before the newest one (e.g. 36h, 2d12h)', parseSpan)
    .option('--keep-tag <tag>', 'keep every snapshot with this tag (repeatable)', collect)
    .option('--dry-run', 'say what would be forgotten and pruned, change nothing')
    .option('--prune', 'then delete the blocks no kept snapshot needs, on every agent')
    .action(async (snapshots: string[], opts: ForgetOptions) => {
      const g = globals()
      const keep: KeepRules = {
        ...(opts.keepLast != null ? { last: opts.keepLast } : {}),
        ...(opts.keepHourly != null ? { hourly: opts.keepHourly } : {}),
        ...(opts.keepDaily != null ? { daily: opts.keepDaily } : {}),
        ...(opts.keepWeekly != null ? { weekly: opts.keepWeekly } : {}),
        ...(opts.keepMonthly != null ? { monthly: opts.keepMonthly } : {}),
        ...(opts.keepYearly != null ? { yearly: opts.keepYearly } : {}),
        ...(opts.keepWithin != null ? { withinSeconds: opts.keepWithin } : {}),
        ...(opts.keepTag != null ? { tags: opts.keepTag } : {})
      }
      const rules = Object.keys(keep).length > 0
      const result = await (await client(g)).forget({
        ...(snapshots.length > 0 ? { snapshots } : {}),
        ...(rules ? { keep } : {}),
        ...(opts.dryRun === true ? { dryRun: true } : {}),
        ...(opts.prune === true ? { prune: true } : {})
      })
      if (g.json === true) printJson(result)
      else print(describeForget(result))
    })
}

export function pruneCommand (globals: () => GlobalOptions): Command {
  return new Command('prune')
    .description('delete the blocks of this agent\'s store that no snapshot it knows needs')
    .option('--dry-run', 'count what would be deleted, delete nothing')
    .action(async (opts: { dryRun?: boolean }) => {
      const g = globals()
      const result = await (await client(g)).prune(opts.dryRun === true ? { dryRun: true } : {})
      if (g.json === true) printJson(result)
      else print(describePrune(result))
    })
}
