import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import * as dagCbor from '@ipld/dag-cbor'
import { InvalidCertificateError, newAdminKey, signCertificate, verifyCertificate } from '../../src/membership/certificate.js'

describe('membership / certificates', () => {
  let admin: Awaited<ReturnType<typeof newAdminKey>>
  let other: Awaited<ReturnType<typeof newAdminKey>>
  let host: string

  before(async () => {
    admin = await newAdminKey()
    other = await newAdminKey()
    host = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  })

  it('a certificate signed by an admin of the cluster verifies for its peer until it expires', async () => {
    const cert = await signCertificate(admin.key, { peerId: host, name: 'db1', issuedAt: 1000, expiresAt: 10_000 })
    const ok = await verifyCertificate(cert, { admins: [admin.adminId], now: 5000, peerId: host })
    assert.equal(ok.peerId, host)
    assert.equal(ok.name, 'db1')
    assert.equal(ok.signer, admin.adminId)
    await assert.rejects(verifyCertificate(cert, { admins: [admin.adminId], now: 10_000 }), (err: Error) => err instanceof InvalidCertificateError && /expired at 1970-01-01T00:00:10.000Z/.test(err.message))
    // without an expiry, it does not expire
    const forever = await signCertificate(admin.key, { peerId: host, name: 'db1', issuedAt: 1000 })
    assert.equal((await verifyCertificate(forever, { admins: [admin.adminId], now: Number.MAX_SAFE_INTEGER })).expiresAt, undefined)
  })

  it('is refused when signed by a key the cluster does not name, presented by another peer, altered or malformed', async () => {
    const cert = await signCertificate(other.key, { peerId: host, name: 'db1', issuedAt: 1000 })
    await assert.rejects(verifyCertificate(cert, { admins: [admin.adminId], now: 2000 }), /is signed by .* which is not an admin of this cluster/)
    const good = await signCertificate(admin.key, { peerId: host, name: 'db1', issuedAt: 1000 })
    await assert.rejects(verifyCertificate(good, { admins: [admin.adminId], now: 2000, peerId: other.adminId }), /was presented by/)
    const env = dagCbor.decode(good) as any
    const renamed = dagCbor.encode({ ...env, body: { ...env.body, name: 'db2' } })
    await assert.rejects(verifyCertificate(renamed, { admins: [admin.adminId], now: 2000 }), (err: Error) => err instanceof InvalidCertificateError && /not signed by its key/.test(err.message))
    await assert.rejects(verifyCertificate(new Uint8Array([1, 2, 3]), { admins: [admin.adminId], now: 2000 }), InvalidCertificateError)
    await assert.rejects(signCertificate(admin.key, { peerId: 'nope', name: 'x', issuedAt: 1 }), /field "peerId"/)
    await assert.rejects(signCertificate(admin.key, { peerId: host, name: '', issuedAt: 1 }), /field "name"/)
    await assert.rejects(signCertificate(admin.key, { peerId: host, name: 'x', issuedAt: 5, expiresAt: 5 }), /"expiresAt" must be after issuedAt/)
  })
})
