import assert from 'node:assert/strict'
import { InvalidArgumentError } from 'commander'
import { describeAuditVerify, describeEntries, parseSince } from '../../src/cli/commands/audit.js'
import type { AuditVerifyView } from '../../src/admin/api.js'

const report: AuditVerifyView = {
  ok: true,
  peerId: '12D3KooWA',
  files: ['audit-000001.jsonl'],
  entries: 3,
  lastSeq: 3,
  lastHash: 'a'.repeat(64),
  problems: [],
  heads: [{ holder: '12D3KooWB', seq: 3, hash: 'a'.repeat(64), status: 'match' }],
  asked: ['12D3KooWB'],
  unreachable: [],
  forks: []
}

describe('cli / audit', () => {
  it('--since takes an ISO time or a span back from now, and refuses anything else', () => {
    const now = Date.parse('2026-12-04T12:00:00Z')
    assert.equal(parseSince('90m', now), '2026-12-04T10:30:00.000Z')
    assert.equal(parseSince('1d', now), '2026-12-03T12:00:00.000Z')
    assert.equal(parseSince('2026-12-01T00:00:00Z', now), '2026-12-01T00:00:00.000Z')
    assert.throws(() => parseSince('yesterday', now), InvalidArgumentError)
  })

  it('verify prints ok with the heads that match, or the first bad entry and what is wrong', () => {
    assert.match(describeAuditVerify(report), /^audit log ok: 3 entries in 1 files, last seq 3; 1 of 1 heads held by 1 members match/)
    const bad: AuditVerifyView = {
      ...report,
      ok: false,
      problem: { kind: 'sequence', file: 'audit-000001.jsonl', line: 2, seq: 3, message: 'audit-000001.jsonl line 2 (seq 3): seq 3 where 2 was expected: the entry with seq 2 is missing' },
      problems: [{ kind: 'sequence', file: 'audit-000001.jsonl', line: 2, seq: 3, message: '...' }, { kind: 'chain', message: '...' }]
    }
    const text = describeAuditVerify(bad)
    assert.match(text, /^audit log NOT ok: first bad entry audit-000001\.jsonl line 2 \(seq 3\): sequence/)
    assert.match(text, /the entry with seq 2 is missing/)
    assert.match(text, /and 1 more problems after it/)
  })

  it('show prints one line per entry: seq, time, action, route with parameters and outcome', () => {
    const text = describeEntries([{ seq: 4, time: '2026-12-04T12:00:00.000Z', action: 'prune', data: { route: 'POST /v1/prune', params: { dryRun: true }, outcome: 'ok' }, signer: 'x', file: 'audit-000001.jsonl', line: 4 }])
    assert.match(text, /^ {5}4 {2}2026-12-04T12:00:00\.000Z {2}prune +POST \/v1\/prune \{"dryRun":true\} -> ok$/)
    assert.equal(describeEntries([]), 'no audit entries')
  })
})
