import { KINDS } from '../envelope/index.js'

/** No snapshot message may be larger than this; results, the largest, are bounded alike as envelopes. */
export const MAX_MESSAGE_BYTES = KINDS.result.maxBytes
/** Most participants one marker may name. */
export const MAX_PARTICIPANTS = 1024
/** Most problems one result may list (the rest are only counted). */
export const MAX_PROBLEMS = 1000
/** Longest time from a marker's start to its deadline. */
export const MAX_DEADLINE_MS = 7 * 24 * 3600 * 1000
/** Longest prepare timeout a barrier marker may ask for. */
export const MAX_PREPARE_TIMEOUT_MS = 3600 * 1000
export const MAX_TAG_LENGTH = 256
export const MAX_NAME_LENGTH = 256
export const MAX_ERROR_LENGTH = 4096
export const MAX_SCHEDULE_NAME = 128
export const MAX_PROBLEM_SOURCE = 256
export const MAX_PROBLEM_PATH = 4096
export const MAX_PROBLEM_MESSAGE = 1024
