// `node dist/scripts/simulate.js [--seeds 10000] [--from 1] [--seed N] [--verbose]`: runs the
// deterministic simulation of the snapshot protocol for many seeds and reports every seed whose
// run broke an invariant. A failing seed replays exactly with `--seed N --verbose`.
import '../src/polyfill.js'
import { simulate } from '../src/simulation/index.js'

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const one = arg('seed')
const from = Number(arg('from') ?? 1)
const count = one != null ? 1 : Number(arg('seeds') ?? 1000)
const verbose = process.argv.includes('--verbose')
if (!Number.isSafeInteger(from) || !Number.isSafeInteger(count) || count < 1) {
  process.stderr.write('simulate: --seeds and --from take whole numbers\n')
  process.exit(2)
}

const started = Date.now()
const failed: number[] = []
let snapshots = 0
let delivered = 0
for (let i = 0; i < count; i++) {
  const seed = one != null ? Number(one) : from + i
  const report = await simulate({ seed })
  snapshots += report.snapshots.length
  delivered += report.delivered
  if (verbose) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  if (report.violations.length > 0) {
    failed.push(seed)
    process.stdout.write(`seed ${seed}: ${report.violations.length} violation(s)\n${report.violations.map(v => `  ${v}`).join('\n')}\n`)
  }
  if (!verbose && (i + 1) % 500 === 0) process.stderr.write(`${i + 1}/${count} seeds, ${failed.length} failing\n`)
}
const secs = (Date.now() - started) / 1000
process.stdout.write(`${count} seeds, ${snapshots} snapshots, ${delivered} messages delivered in ${secs.toFixed(1)} s: ${failed.length === 0 ? 'no violations' : `${failed.length} failing (${failed.slice(0, 20).join(', ')}${failed.length > 20 ? ', …' : ''})`}\n`)
process.exitCode = failed.length === 0 ? 0 : 1
