import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import {
  InvalidMessageError, InvalidSignatureError, MAX_MESSAGE_BYTES, MessageTooLargeError, SNAPSHOT_TOPIC,
  decodeMarker, decodeMessage, decodeResult, encodeMarker, encodeResult, newSnapshotId, signResult, verifyResult,
  type SignedResult
} from '../../src/snapshot/index.js'
import { errorBody, marker, okBody, peer, peers } from './fixtures.js'

const enc = (o: object): Uint8Array => dagCbor.encode(o)

/** asserts that decoding throws InvalidMessageError naming `field`, with a message matching `re` */
function rejectsField (bytes: Uint8Array, field: string, re: RegExp): void {
  assert.throws(() => decodeMessage(bytes), (err: any) => {
    assert.ok(err instanceof InvalidMessageError, `expected InvalidMessageError, got ${err?.name}: ${err?.message}`)
    assert.equal(err.code, 'ERR_INVALID_MESSAGE')
    assert.equal(err.field, field, err.message)
    assert.match(err.message, new RegExp(`"${field}"`))
    assert.match(err.message, re)
    return true
  })
}

describe('snapshot / messages', () => {
  it('names the gossip topic', () => {
    assert.equal(SNAPSHOT_TOPIC, '/snapmesh/snapshots/1.0.0')
  })

  it('snapshot IDs are 64 lowercase hex digits and depend on every input', () => {
    const r = new Uint8Array(32).fill(1)
    const id = newSnapshotId('12D3KooWA', 5, 1000, r)
    assert.match(id, /^[0-9a-f]{64}$/)
    assert.equal(newSnapshotId('12D3KooWA', 5, 1000, r), id)
    assert.notEqual(newSnapshotId('12D3KooWB', 5, 1000, r), id)
    assert.notEqual(newSnapshotId('12D3KooWA', 6, 1000, r), id)
    assert.notEqual(newSnapshotId('12D3KooWA', 5, 1001, r), id)
    assert.notEqual(newSnapshotId('12D3KooWA', 5, 1000, new Uint8Array(32).fill(2)), id)
  })

  it('a marker round-trips through its encoding', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id], { tag: 'nightly' })
    assert.deepEqual(decodeMessage(encodeMarker(m)), m)
    assert.deepEqual(decodeMarker(encodeMarker(m)), m)
    const untagged = marker(a.id, [a.id])
    assert.deepEqual(decodeMarker(encodeMarker(untagged)), untagged)
  })

  it('a signed result round-trips and verifies', async () => {
    const a = await peer()
    const m = marker(a.id, [a.id])
    const stats = { files: 3, dirs: 1, symlinks: 0, bytes: 30, filesRead: 3, filesReused: 0, bytesRead: 30, chunks: 3, newChunks: 3, newBytes: 30, durationMs: 7 }
    const problems = [{ source: 'etc', path: 'shadow', message: 'EACCES' }]
    const r = await signResult(a.key, okBody(m, a, { stats, problems }))
    assert.equal(r.v, 1)
    assert.equal(r.type, 'result')
    assert.equal(r.signer, a.id)
    assert.equal(r.sig.length, 64)
    const back = decodeResult(encodeResult(r))
    assert.deepEqual(encodeResult(back), encodeResult(r))
    assert.deepEqual(back.stats, stats)
    assert.deepEqual(back.problems, problems)
    assert.ok(back.root?.equals(r.root))
    await verifyResult(back)
    const failed = await signResult(a.key, errorBody(m, a, 'disk gone'))
    assert.deepEqual(encodeResult(decodeResult(encodeResult(failed))), encodeResult(failed))
    assert.equal(decodeResult(encodeResult(failed)).error, 'disk gone')
    await verifyResult(failed)
  })

  it('a result signed by key B but claiming peer A is refused, and so is a tampered one', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    const forged = await signResult(b.key, okBody(m, a))
    await assert.rejects(verifyResult(forged), (err: any) => err instanceof InvalidSignatureError && err.code === 'ERR_INVALID_SIGNATURE' && err.message.includes(`claims peer ${a.id} but is not signed by its key`))
    const good = await signResult(a.key, okBody(m, a))
    await assert.rejects(verifyResult({ ...good, name: 'someone-else' }), InvalidSignatureError)
    await assert.rejects(verifyResult({ ...good, time: good.time + 1 }), InvalidSignatureError)
    await assert.rejects(verifyResult({ ...good, root: undefined, status: 'error' }), InvalidSignatureError)
  })

  it('marker decode errors name the field', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    rejectsField(enc({ ...m, v: 2 }), 'v', /must be 1, got 2/)
    rejectsField(enc({ ...m, id: 'xyz' }), 'id', /64 lowercase hex digits, got "xyz"/)
    rejectsField(enc({ ...m, id: 'AB'.repeat(32) }), 'id', /lowercase/)
    rejectsField(enc({ ...m, initiator: 'QmNotAPeer' }), 'initiator', /not a valid peer ID/)
    rejectsField(enc({ ...m, lamport: -1 }), 'lamport', /non-negative integer, got -1/)
    rejectsField(enc({ ...m, lamport: 1.5 }), 'lamport', /non-negative integer/)
    rejectsField(enc({ ...m, lamport: '3' }), 'lamport', /non-negative integer, got "3"/)
    rejectsField(enc({ ...m, tag: 7 }), 'tag', /must be a string/)
    rejectsField(enc({ ...m, tag: 'x'.repeat(300) }), 'tag', /at most 256 characters/)
    rejectsField(enc({ ...m, startedAt: 'now' }), 'startedAt', /non-negative integer/)
    rejectsField(enc({ ...m, deadline: 10 }), 'deadline', /after startedAt/)
    rejectsField(enc({ ...m, deadline: m.startedAt + 30 * 24 * 3600_000 }), 'deadline', /at most \d+ ms after startedAt/)
    rejectsField(enc({ ...m, expected: [] }), 'expected', /1 to 1024 peer IDs/)
    rejectsField(enc({ ...m, expected: 'everyone' }), 'expected', /peer IDs/)
    rejectsField(enc({ ...m, expected: [...m.expected].reverse() }), 'expected', /sorted/)
    rejectsField(enc({ ...m, expected: [a.id, a.id] }), 'expected', /once/)
    rejectsField(enc({ ...m, expected: [b.id] }), 'expected', /include the initiator/)
    rejectsField(enc({ ...m, expected: [a.id, 'nope'].sort() }), 'expected', /not a valid peer ID/)
    rejectsField(enc({ ...m, consistency: 'eventual' }), 'consistency', /must be "marker"/)
    rejectsField(enc({ ...m, extra: 1 }), 'extra', /unknown field/)
    rejectsField(enc({ ...m, type: 'nope' }), 'type', /"marker", "result" or "prepared"/)
  })

  it('result decode errors name the field', async () => {
    const [a, rsa] = [await peer(), 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N']
    const m = marker(a.id, [a.id])
    const r = await signResult(a.key, okBody(m, a, { problems: [{ source: 's', path: 'p', message: 'm' }] }))
    // a result travels as an envelope { type, body, signer, sig }: tamper with its body or the envelope itself
    const env = dagCbor.decode(encodeResult(r)) as { type: string, body: Record<string, unknown>, signer: string, sig: Uint8Array }
    const body = (over: Record<string, unknown>): Uint8Array => enc({ ...env, body: { ...env.body, ...over } })
    rejectsField(body({ id: 5 }), 'id', /64 lowercase hex/)
    rejectsField(body({ peerId: rsa }), 'peerId', /Ed25519/)
    rejectsField(body({ name: 'n'.repeat(257) }), 'name', /at most 256 characters/)
    rejectsField(body({ time: -5 }), 'time', /non-negative/)
    rejectsField(body({ status: 'fine' }), 'status', /"ok" or "error", got "fine"/)
    rejectsField(body({ root: 'bafy' }), 'root', /must be a CID/)
    const { root: _root, ...noRoot } = env.body
    rejectsField(enc({ ...env, body: noRoot }), 'root', /required in an ok result/)
    rejectsField(body({ status: 'error' }), 'root', /absent from an error result/)
    rejectsField(body({ stats: [1, 2] }), 'stats', /must be a map/)
    rejectsField(body({ stats: { files: 1 } }), 'dirs', /non-negative integer, got nothing/)
    rejectsField(body({ problems: 'many' }), 'problems', /list of at most 1000/)
    rejectsField(body({ problems: [{ source: 's', path: 1, message: 'm' }] }), 'path', /problems\[0\].*must be a string/)
    rejectsField(body({ problemCount: 0 }), 'problemCount', /at least the 1 problems listed/)
    rejectsField(body({ error: 42 }), 'error', /must be a string/)
    rejectsField(body({ hello: 'x' }), 'hello', /unknown field/)
    rejectsField(enc({ ...env, sig: new Uint8Array(3) }), 'sig', /64-byte signature, got 3 bytes/)
    rejectsField(enc({ ...env, signer: rsa }), 'signer', /Ed25519/)
    rejectsField(enc({ ...env, body: 'all good' }), 'body', /must be a map, got "all good"/)
    rejectsField(enc({ ...env, hello: 'x' }), 'hello', /unknown field/)
    // the in-memory form of an older signed result is not an envelope
    rejectsField(enc({ ...env.body, v: 1, type: 'result', sig: env.sig }), 'v', /unknown field/)
  })

  it('bytes that are not a dag-cbor map are refused as invalid', () => {
    assert.throws(() => decodeMessage(new TextEncoder().encode('not cbor at all')), InvalidMessageError)
    assert.throws(() => decodeMessage(enc([1, 2, 3] as any)), /must be a map, got a list of 3/)
    assert.throws(() => decodeMessage(new Uint8Array(0)), InvalidMessageError)
  })

  it('a message over the size limit is refused before decoding', () => {
    assert.throws(() => decodeMessage(new Uint8Array(MAX_MESSAGE_BYTES + 1)), (err: any) => err instanceof MessageTooLargeError && /262145 bytes exceeds the limit of 262144/.test(err.message))
    assert.throws(() => decodeMessage(new Uint8Array(5000), { maxBytes: 4096 }), MessageTooLargeError)
  })

  it('a result with thousands of problems is cut to fit and keeps the count', async () => {
    const a = await peer()
    const m = marker(a.id, [a.id])
    const problems = Array.from({ length: 5000 }, (_, i) => ({ source: 's', path: `file-${i}`, message: 'EACCES: permission denied' }))
    const r = await signResult(a.key, okBody(m, a, { problems }))
    assert.equal(r.problemCount, 5000)
    assert.ok((r.problems?.length ?? 0) > 0)
    assert.deepEqual(r.problems?.[0], problems[0])
    assert.ok(encodeResult(r).length <= MAX_MESSAGE_BYTES)
    await verifyResult(decodeResult(encodeResult(r)))
  })

  it('long problem texts are cut so the list fits a smaller limit, never over it', async () => {
    const a = await peer()
    const m = marker(a.id, [a.id])
    const problems = Array.from({ length: 300 }, (_, i) => ({ source: 's'.repeat(1000), path: `${i}/${'p'.repeat(9000)}`, message: 'm'.repeat(5000) }))
    const r = await signResult(a.key, okBody(m, a, { problems, error: undefined }), { maxBytes: 64 * 1024 })
    const bytes = encodeResult(r)
    assert.ok(bytes.length <= 64 * 1024, `${bytes.length} bytes`)
    assert.equal(r.problemCount, 300)
    assert.ok((r.problems?.length ?? 0) >= 5)
    const back = decodeMessage(bytes) as SignedResult
    await verifyResult(back)
    assert.equal(back.problems?.[0].source.length, 256)
  })

  it('a short problem list is kept whole with no count added', async () => {
    const a = await peer()
    const m = marker(a.id, [a.id])
    const r = await signResult(a.key, okBody(m, a, { problems: [{ source: 's', path: 'p', message: 'x' }] }))
    assert.equal(r.problems?.length, 1)
    assert.equal(r.problemCount, undefined)
  })

  it('refuses to encode a marker that receivers would reject', async () => {
    const [a, b] = await peers(2)
    assert.throws(() => encodeMarker(marker(a.id, [b.id])), /include the initiator/)
  })
})
