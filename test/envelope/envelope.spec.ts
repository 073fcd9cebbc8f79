import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  EnvelopeError, EnvelopeSignatureError, EnvelopeTooLargeError, KINDS, MalformedEnvelopeError, SIGNING_DOMAIN, WrongEnvelopeTypeError,
  decodeEnvelopeBytes, encodeEnvelope, isKind, openEnvelope, readEnvelope, sealEnvelope, signedBytes, toSigned, verifyEnvelope,
  type Envelope, type Kind
} from '../../src/envelope/index.js'
import {
  InvalidCopyReportError, InvalidForgetNoticeError, InvalidRecordError, MAX_COPY_REPORT_BYTES, MAX_FORGET_NOTICE_BYTES, MAX_HEAD_BYTES,
  decodeCopyReport, decodeForgetNotice, decodeHead, encodeCopyReport, encodeForgetNotice, signCopyReport, signForgetNotice, signHead
} from '../../src/metadata/index.js'
import { InvalidMessageError, InvalidSignatureError, MAX_MESSAGE_BYTES, decodeResult, encodeResult, signResult, verifyResult } from '../../src/snapshot/index.js'
import { marker, okBody, peers, root, type Peer } from '../snapshot/fixtures.js'
import { InvalidAuditHeadError, MalformedAuditEntryError, decodeAuditEnvelope, decodeAuditHead, signAuditHead } from '../../src/audit/index.js'
import { InvalidCertificateError, signCertificate, verifyCertificate } from '../../src/membership/certificate.js'

const ALL: Kind[] = ['result', 'head', 'copies', 'forget', 'audit', 'audit-head', 'member']
const anyBody = (b: Record<string, unknown>): Record<string, unknown> => b

describe('envelope / format', () => {
  let a: Peer
  let b: Peer

  before(async () => { [a, b] = await peers(2) })

  it('registers the seven kinds, and no other', async () => {
    assert.deepEqual(Object.keys(KINDS).sort(), [...ALL].sort())
    for (const k of ALL) {
      assert.ok(isKind(k))
      assert.ok(KINDS[k].maxBytes > 0 && KINDS[k].name.length > 0, k)
    }
    assert.ok(!isKind('marker'))
    assert.ok(!isKind('toString'), 'only own entries are kinds')
    assert.throws(() => signedBytes('marker' as Kind, a.id, {}), /unregistered kind "marker"/)
    await assert.rejects(verifyEnvelope({ type: 'marker' as Kind, body: {}, signer: a.id, sig: new Uint8Array(64) }), /"marker" is not a registered kind/)
    assert.equal(MAX_MESSAGE_BYTES, KINDS.result.maxBytes)
    assert.equal(MAX_HEAD_BYTES, KINDS.head.maxBytes)
    assert.equal(MAX_COPY_REPORT_BYTES, KINDS.copies.maxBytes)
    assert.equal(MAX_FORGET_NOTICE_BYTES, KINDS.forget.maxBytes)
  })

  it('signs exactly dag-cbor(["snapmesh/signed/v1", type, signer, body]) with the signer\'s key', async () => {
    const body = { by: a.id, id: 'a'.repeat(64), prune: false, time: 1 }
    const env = await sealEnvelope(a.key, 'forget', body)
    assert.equal(env.signer, a.id)
    assert.equal(env.sig.length, 64)
    const bytes = signedBytes('forget', a.id, body)
    assert.deepEqual(bytes, dagCbor.encode([SIGNING_DOMAIN, 'forget', a.id, body]))
    assert.equal(SIGNING_DOMAIN, 'snapmesh/signed/v1')
    // checked with the public key alone, as any other implementation would
    assert.equal(await peerIdFromString(a.id).publicKey?.verify(bytes, env.sig), true)
    assert.equal(await peerIdFromString(b.id).publicKey?.verify(bytes, env.sig), false)
    // the wire form is the map { type, body, signer, sig } and nothing else
    assert.deepEqual(Object.keys(dagCbor.decode(encodeEnvelope(env)) as object).sort(), ['body', 'sig', 'signer', 'type'])
  })

  it('the in-memory form puts the body\'s fields beside v, type, signer and sig', async () => {
    const env = await sealEnvelope(a.key, 'forget', { by: a.id, id: 'a'.repeat(64), prune: true, time: 1 })
    const flat = toSigned(env)
    assert.deepEqual({ ...flat, sig: [...flat.sig] }, { by: a.id, id: 'a'.repeat(64), prune: true, time: 1, v: 1, type: 'forget', signer: a.id, sig: [...env.sig] })
    assert.throws(() => toSigned({ ...env, body: { ...env.body, sig: 1 } }), /cannot have a field "sig"/)
  })

  it('refuses malformed envelopes, naming the field', async () => {
    const env = await sealEnvelope(a.key, 'forget', { by: a.id, id: 'a'.repeat(64), prune: true, time: 1 })
    const read = (o: unknown): Envelope<'forget'> => readEnvelope(o, 'forget', anyBody)
    const refuses = (o: unknown, cls: typeof EnvelopeError, field: string | undefined, re: RegExp): void => {
      assert.throws(() => read(o), (err: any) => err instanceof cls && err.field === field && re.test(err.message))
    }
    assert.deepEqual(read(env).body, env.body)
    refuses([env], MalformedEnvelopeError, undefined, /forget notice must be a map of type, body, signer and sig, got a list of 1/)
    refuses(new Uint8Array(4), MalformedEnvelopeError, undefined, /must be a map .* got 4 bytes/)
    refuses({ ...env, extra: 1 }, MalformedEnvelopeError, 'extra', /unknown field "extra" in the envelope/)
    refuses({ ...env, type: 'copies' }, WrongEnvelopeTypeError, 'type', /field "type" must be "forget", got "copies" \(a copy report\)/)
    refuses({ ...env, type: undefined }, WrongEnvelopeTypeError, 'type', /field "type" must be "forget", got nothing/)
    refuses({ ...env, signer: 'nobody' }, MalformedEnvelopeError, 'signer', /field "signer" is not a valid peer ID/)
    refuses({ ...env, signer: 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N' }, MalformedEnvelopeError, 'signer', /must be an Ed25519 peer ID, got a RSA one/)
    refuses({ ...env, sig: env.sig.subarray(1) }, MalformedEnvelopeError, 'sig', /64-byte signature, got 63 bytes/)
    refuses({ ...env, sig: 'abc' }, MalformedEnvelopeError, 'sig', /64-byte signature, got "abc"/)
    refuses({ ...env, body: [1] }, MalformedEnvelopeError, 'body', /field "body" must be a map, got a list of 1/)
    const { body: _body, ...noBody } = env
    refuses(noBody, MalformedEnvelopeError, 'body', /field "body" must be a map, got nothing/)
    assert.throws(() => readEnvelope(env, 'forget', () => { throw new RangeError('body refused') }), /body refused/)
  })

  it('bounds the bytes before decoding them', async () => {
    const env = await sealEnvelope(a.key, 'forget', { by: a.id, id: 'a'.repeat(64), prune: true, time: 1 })
    const bytes = encodeEnvelope(env)
    assert.ok(bytes.length <= KINDS.forget.maxBytes)
    await openEnvelope(bytes, 'forget', anyBody)
    // over the kind's limit: refused even though it is not dag-cbor at all
    await assert.rejects(openEnvelope(new Uint8Array(KINDS.forget.maxBytes + 1), 'forget', anyBody), (err: any) => err instanceof EnvelopeTooLargeError && /1025 bytes exceeds the limit of 1024/.test(err.message))
    await assert.rejects(openEnvelope(bytes, 'forget', anyBody, { maxBytes: 10 }), EnvelopeTooLargeError)
    // a higher limit than the kind's is not honoured
    await assert.rejects(openEnvelope(new Uint8Array(KINDS.forget.maxBytes + 1), 'forget', anyBody, { maxBytes: 1 << 20 }), EnvelopeTooLargeError)
    assert.throws(() => decodeEnvelopeBytes(new Uint8Array([0xff]), 'forget'), (err: any) => err instanceof MalformedEnvelopeError && /forget notice is not dag-cbor/.test(err.message))
  })

  it('refuses an envelope whose signature or signer does not match', async () => {
    const body = { by: a.id, id: 'a'.repeat(64), prune: true, time: 1 }
    const env = await sealEnvelope(a.key, 'forget', body)
    await verifyEnvelope(env)
    await assert.rejects(verifyEnvelope({ ...env, body: { ...body, time: 2 } }), (err: any) => err instanceof EnvelopeSignatureError && err.message === `forget notice claims member ${a.id} but is not signed by its key`)
    // signed by b for a body that names a
    const byB = await sealEnvelope(b.key, 'forget', body)
    await assert.rejects(verifyEnvelope(byB), (err: any) => err instanceof EnvelopeSignatureError && err.message.includes(`claims member ${a.id} but is not signed by its key: the envelope's signer is ${b.id}`))
    // the signature of a, presented as b's
    await assert.rejects(verifyEnvelope({ ...env, body: { ...body, by: b.id }, signer: b.id }), /claims member .* but is not signed by its key/)
    await assert.rejects(verifyEnvelope({ ...env, sig: new Uint8Array(64) }), EnvelopeSignatureError)
    await assert.rejects(verifyEnvelope({ ...env, signer: 'nobody' }), (err: any) => err instanceof MalformedEnvelopeError && err.field === 'signer')
    await assert.rejects(verifyEnvelope({ ...env, sig: new Uint8Array(3) }), (err: any) => err instanceof MalformedEnvelopeError && err.field === 'sig')
  })
})

describe('envelope / kinds are never confused', () => {
  let a: Peer
  /** one body carrying every kind's signer field, so that only the domain of the signature differs */
  let body: Record<string, unknown>

  before(async () => {
    [a] = await peers(1)
    body = { by: a.id, note: 'one body, signed as each kind in turn', peerId: a.id, reporter: a.id }
  })

  for (const x of ALL) {
    it(`a genuine "${x}" signature verifies as "${x}"`, async () => {
      const env = await sealEnvelope(a.key, x, body)
      await verifyEnvelope(env)
      const opened = await openEnvelope(encodeEnvelope(env), x, anyBody)
      assert.deepEqual(opened.body, body)
      assert.equal(await peerIdFromString(a.id).publicKey?.verify(signedBytes(x, a.id, body), env.sig), true)
    })

    for (const y of ALL.filter(k => k !== x)) {
      it(`a genuine "${x}" signature does not verify as "${y}"`, async () => {
        const env = await sealEnvelope(a.key, x, body)
        // the same signature over the same body and signer, under the other kind's domain
        assert.equal(await peerIdFromString(a.id).publicKey?.verify(signedBytes(y, a.id, body), env.sig), false)
        const relabelled = { ...env, type: y }
        await assert.rejects(verifyEnvelope(relabelled), (err: any) => err instanceof EnvelopeSignatureError && /but is not signed by its key/.test(err.message))
        await assert.rejects(openEnvelope(encodeEnvelope(relabelled), y, anyBody), EnvelopeSignatureError)
        // and, left as it is, it is not taken for the other kind at all
        await assert.rejects(openEnvelope(encodeEnvelope(env), y, anyBody), (err: any) => err instanceof WrongEnvelopeTypeError && err.message.includes(`field "type" must be "${y}", got "${x}"`))
      })
    }
  }
})

describe('envelope / the kinds\' own decoders refuse each other\'s records', () => {
  let a: Peer
  let genuine: Record<Kind, Uint8Array>
  /** each kind's decode-and-verify, as the agent calls it */
  const open: Record<Kind, (bytes: Uint8Array) => Promise<unknown>> = {
    result: async (bytes) => { const r = decodeResult(bytes); await verifyResult(r); return r },
    head: decodeHead,
    copies: decodeCopyReport,
    forget: decodeForgetNotice,
    audit: decodeAuditEnvelope,
    'audit-head': decodeAuditHead,
    member: async (bytes) => verifyCertificate(bytes, { admins: [a.id], now: 2 })
  }
  const errorOf: Record<Kind, new (...args: any[]) => Error> = {
    result: InvalidMessageError,
    head: InvalidRecordError,
    copies: InvalidCopyReportError,
    forget: InvalidForgetNoticeError,
    audit: MalformedAuditEntryError,
    'audit-head': InvalidAuditHeadError,
    member: InvalidCertificateError
  }

  before(async () => {
    [a] = await peers(1)
    const m = marker(a.id, [a.id])
    genuine = {
      result: encodeResult(await signResult(a.key, okBody(m, a))),
      head: await signHead(a.key, { peerId: a.id, seq: 1, snapshots: [] }),
      copies: encodeCopyReport(await signCopyReport(a.key, { id: m.id, owner: a.id, root: root(1), reporter: a.id, time: 1, blocks: 1, copies: 1, wanted: 1, holders: [a.id] })),
      forget: encodeForgetNotice(await signForgetNotice(a.key, { id: m.id, by: a.id, time: 1, prune: false })),
      audit: encodeEnvelope(await sealEnvelope(a.key, 'audit', { seq: 1, time: new Date(1).toISOString(), prev: '0'.repeat(64), action: 'admin', data: { route: 'GET /v1/status' } })),
      'audit-head': await signAuditHead(a.key, { peerId: a.id, seq: 1, hash: 'a'.repeat(64), time: 1 }),
      member: await signCertificate(a.key, { peerId: a.id, name: 'a', issuedAt: 1 })
    }
  })

  for (const x of ALL) {
    it(`a "${x}" envelope opens as "${x}" and as nothing else`, async () => {
      await open[x](genuine[x])
      for (const y of ALL.filter(k => k !== x)) {
        await assert.rejects(open[y](genuine[x]), (err: any) => err instanceof errorOf[y] && /field "type" must be/.test(err.message), `${x} opened as ${y}`)
        // relabelled as the other kind, it is refused too (its body is not one of that kind)
        const env = dagCbor.decode(genuine[x]) as Envelope
        await assert.rejects(open[y](dagCbor.encode({ ...env, type: y })), errorOf[y], `${x} relabelled as ${y}`)
      }
    })
  }

  it('a result\'s signature failure is an InvalidSignatureError with the envelope error as its cause', async () => {
    const r = decodeResult(genuine.result)
    const err = await verifyResult({ ...r, time: r.time + 1 }).catch((e: Error) => e)
    assert.ok(err instanceof InvalidSignatureError)
    assert.ok(err.cause instanceof EnvelopeSignatureError)
  })

  it('a key that is not the signer\'s cannot pass for it', async () => {
    const other = await generateKeyPair('Ed25519')
    const env = dagCbor.decode(genuine.forget) as Envelope
    const forged = await sealEnvelope(other, 'forget', env.body as Record<string, unknown>)
    await assert.rejects(decodeForgetNotice(encodeEnvelope({ ...forged, signer: a.id })), (err: any) => err instanceof InvalidForgetNoticeError && /not signed by its key/.test(err.message))
  })
})
