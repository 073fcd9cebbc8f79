/** A membership certificate that is malformed, not signed by an admin key the cluster names, for another peer, or expired. */
export class InvalidCertificateError extends Error {
  static override name = 'InvalidCertificateError'
  override name = 'InvalidCertificateError'
  code = 'ERR_INVALID_CERTIFICATE'
}

/** An admin key file that cannot be used (missing, not a libp2p Ed25519 private key). */
export class AdminKeyError extends Error {
  static override name = 'AdminKeyError'
  override name = 'AdminKeyError'
  code = 'ERR_ADMIN_KEY'
}
