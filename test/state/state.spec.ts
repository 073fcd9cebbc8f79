import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Catalog } from '../../src/metadata/index.js'
import { AgentState, FROZEN, InvalidStateKeyError, LAMPORT, LAST_ROOT, replicatedKey, takenOverKey } from '../../src/state/index.js'

describe('state / agent state', () => {
  let dir: string
  let state: AgentState

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-state-'))
    state = new AgentState({ path: path.join(dir, 'state') })
    await state.start()
  })
  afterEach(async () => {
    await state.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('keeps values across a restart, and deletes them', async () => {
    assert.equal(await state.get(LAMPORT), undefined)
    await state.set(LAMPORT, '42')
    await state.set(LAST_ROOT, 'bafyroot')
    await state.stop()
    state = new AgentState({ path: path.join(dir, 'state') })
    await state.start()
    assert.equal(await state.get(LAMPORT), '42')
    assert.equal(await state.get(LAST_ROOT), 'bafyroot')
    await state.delete(LAMPORT)
    assert.equal(await state.get(LAMPORT), undefined)
    assert.equal(await state.get(LAST_ROOT), 'bafyroot')
  })

  it('refuses a malformed key, naming it', async () => {
    await assert.rejects(state.set('', 'x'), InvalidStateKeyError)
    await assert.rejects(state.set('../escape', 'x'), (err: Error) => err instanceof InvalidStateKeyError && err.message.includes('../escape'))
    await assert.rejects(state.get('x'.repeat(600)), InvalidStateKeyError)
  })

  it('forgetting a snapshot deletes its keys and no other snapshot\'s', async () => {
    const a = 'a'.repeat(64)
    const b = 'b'.repeat(64)
    await state.set(replicatedKey(a), '{"members":[]}')
    await state.set(takenOverKey(a, 'peerOne'), '[]')
    await state.set(takenOverKey(a, 'peerTwo'), '[]')
    await state.set(replicatedKey(b), '{"members":[]}')
    await state.set(takenOverKey(b, 'peerOne'), '[]')
    await state.set(FROZEN, '[]')
    assert.deepEqual((await state.keys(`taken-over/${a}/`)).sort(), [takenOverKey(a, 'peerOne'), takenOverKey(a, 'peerTwo')])
    assert.equal(await state.forgetSnapshot(a), 3)
    assert.equal(await state.get(replicatedKey(a)), undefined)
    assert.deepEqual(await state.keys(`taken-over/${a}/`), [])
    assert.equal(await state.get(replicatedKey(b)), '{"members":[]}')
    assert.equal(await state.get(takenOverKey(b, 'peerOne')), '[]')
    assert.equal(await state.get(FROZEN), '[]')
    assert.equal(await state.forgetSnapshot(a), 0)
  })

  it('adopts the values an older version kept in the catalog, once, without overwriting newer ones', async () => {
    const catalog = new Catalog({ path: path.join(dir, 'catalog') })
    await catalog.start()
    try {
      await catalog.setMeta(LAMPORT, '7')
      await catalog.setMeta(LAST_ROOT, 'bafyold')
      await catalog.setMeta(FROZEN, '["' + 'c'.repeat(64) + '"]')
      await state.set(LAST_ROOT, 'bafynew')
      await state.adoptLegacy(catalog)
      assert.equal(await state.get(LAMPORT), '7')
      assert.equal(await state.get(LAST_ROOT), 'bafynew')
      assert.equal(await state.get(FROZEN), '["' + 'c'.repeat(64) + '"]')
    } finally {
      await catalog.stop()
    }
  })
})
