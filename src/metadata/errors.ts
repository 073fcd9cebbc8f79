/** A snapshot record, head or DHT key that is malformed, forged or does not match its key. */
export class InvalidRecordError extends Error {
  static override name = 'InvalidRecordError'
  override name = 'InvalidRecordError'
  code = 'ERR_INVALID_RECORD'
}

/** Two records that share an ID but describe different snapshots. */
export class ConflictingRecordError extends Error {
  static override name = 'ConflictingRecordError'
  override name = 'ConflictingRecordError'
  code = 'ERR_CONFLICTING_RECORD'
}

/** No snapshot has the ID, or an ID starting with the prefix, asked for. */
export class NotFoundError extends Error {
  static override name = 'NotFoundError'
  override name = 'NotFoundError'
  code = 'ERR_NOT_FOUND'
}

/** A prefix that more than one snapshot ID starts with. */
export class AmbiguousIdError extends Error {
  static override name = 'AmbiguousIdError'
  override name = 'AmbiguousIdError'
  code = 'ERR_AMBIGUOUS'
}

/** The catalog was used before start() or after stop(). */
export class CatalogNotStartedError extends Error {
  static override name = 'CatalogNotStartedError'
  override name = 'CatalogNotStartedError'
  code = 'ERR_NOT_STARTED'
}

/** A copy report that is malformed or not signed by the reporter it names. */
export class InvalidCopyReportError extends Error {
  static override name = 'InvalidCopyReportError'
  override name = 'InvalidCopyReportError'
  code = 'ERR_INVALID_COPY_REPORT'
}

/** A forget notice that is malformed or not signed by the agent it names. */
export class InvalidForgetNoticeError extends Error {
  static override name = 'InvalidForgetNoticeError'
  override name = 'InvalidForgetNoticeError'
  code = 'ERR_INVALID_FORGET_NOTICE'
}

/** A record offered for a snapshot that was forgotten: it is not stored again. */
export class ForgottenSnapshotError extends Error {
  static override name = 'ForgottenSnapshotError'
  override name = 'ForgottenSnapshotError'
  code = 'ERR_FORGOTTEN'
}
