/** Anything wrong with the audit log itself: it cannot be opened, read or written. */
export class AuditLogError extends Error {
  static override name = 'AuditLogError'
  override name = 'AuditLogError'
  code = 'ERR_AUDIT_LOG'
}

/** A line of the audit log that is not an entry: not JSON, a missing or wrong field. */
export class MalformedAuditEntryError extends Error {
  static override name = 'MalformedAuditEntryError'
  override name = 'MalformedAuditEntryError'
  code = 'ERR_MALFORMED_AUDIT_ENTRY'
}

/** An audit head that is malformed, or not signed by the peer it names. */
export class InvalidAuditHeadError extends Error {
  static override name = 'InvalidAuditHeadError'
  override name = 'InvalidAuditHeadError'
  code = 'ERR_INVALID_AUDIT_HEAD'
}

/** An audit head gossiped by another peer than the one it names. */
export class WrongAuditHeadAuthorError extends Error {
  static override name = 'WrongAuditHeadAuthorError'
  override name = 'WrongAuditHeadAuthorError'
  code = 'ERR_WRONG_AUDIT_HEAD_AUTHOR'
}

/** An audit head older than (or the same as) the one already kept for its peer. */
export class StaleAuditHeadError extends Error {
  static override name = 'StaleAuditHeadError'
  override name = 'StaleAuditHeadError'
  code = 'ERR_STALE_AUDIT_HEAD'
}
