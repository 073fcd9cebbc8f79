/**
 * Anything wrong with a signed envelope. `field` names the envelope field at fault when there is
 * one ("type", "body", "signer", "sig", or an unknown field's name).
 */
export class EnvelopeError extends Error {
  static override name = 'EnvelopeError'
  override name = 'EnvelopeError'
  code = 'ERR_ENVELOPE'
  field?: string

  constructor (message: string, options: { field?: string, cause?: unknown } = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined)
    if (options.field != null) this.field = options.field
  }
}

/** Envelope bytes longer than the kind allows: refused before decoding. */
export class EnvelopeTooLargeError extends EnvelopeError {
  static override name = 'EnvelopeTooLargeError'
  override name = 'EnvelopeTooLargeError'
  override code = 'ERR_ENVELOPE_TOO_LARGE'
}

/** Not an envelope: not dag-cbor, not a map, a missing or unknown field, a bad signer or signature field. */
export class MalformedEnvelopeError extends EnvelopeError {
  static override name = 'MalformedEnvelopeError'
  override name = 'MalformedEnvelopeError'
  override code = 'ERR_MALFORMED_ENVELOPE'
}

/** An envelope of another kind than the one expected (a head where a forget notice belongs, ...). */
export class WrongEnvelopeTypeError extends EnvelopeError {
  static override name = 'WrongEnvelopeTypeError'
  override name = 'WrongEnvelopeTypeError'
  override code = 'ERR_WRONG_ENVELOPE_TYPE'
}

/**
 * An envelope not signed by the key it claims: the signature does not verify against the signer's
 * peer ID for this kind, or the body names another peer as its signer than the envelope does.
 */
export class EnvelopeSignatureError extends EnvelopeError {
  static override name = 'EnvelopeSignatureError'
  override name = 'EnvelopeSignatureError'
  override code = 'ERR_ENVELOPE_SIGNATURE'
}
