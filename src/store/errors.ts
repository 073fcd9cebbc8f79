export class CorruptBlockError extends Error {
  static override name = 'CorruptBlockError'
  override name = 'CorruptBlockError'
  code = 'ERR_CORRUPT_BLOCK'
}

export class BlockNotFoundError extends Error {
  static override name = 'BlockNotFoundError'
  override name = 'BlockNotFoundError'
  code = 'ERR_BLOCK_NOT_FOUND'
}

export class UnsupportedHashError extends Error {
  static override name = 'UnsupportedHashError'
  override name = 'UnsupportedHashError'
  code = 'ERR_UNSUPPORTED_HASH'
}
