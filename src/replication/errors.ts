export class ReplicationRequestError extends Error {
  override name = 'ReplicationRequestError'
  code = 'ERR_INVALID_REPLICATION_REQUEST'
}
