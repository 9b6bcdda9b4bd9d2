/** One field the server refused, as listed in a 422 problem document. */
export interface FieldError {
  field: string
  message: string
}

/** The problem types a client acts on (RFC 9457 `type` members of fieldcrm). */
export const ProblemTypes = {
  /** The access token's lifetime is over: refresh it and send again. */
  tokenExpired: '/problems/token-expired',
  /** The session ended (signed out, revoked, deactivated): sign in again. */
  sessionRevoked: '/problems/session-revoked',
  /** A missing, malformed or forged credential. */
  unauthenticated: '/problems/unauthenticated',
  /** The server cannot vouch for the device's cursor: push, reset, pull from nothing. */
  resyncRequired: '/problems/resync-required',
} as const

/**
 * FieldcrmProblemError is a non-2xx answer of the server, carrying its
 * problem document (type, status, title, detail and field errors).
 */
export class FieldcrmProblemError extends Error {
  readonly type: string
  readonly status: number
  readonly title: string
  readonly detail: string
  readonly errors: FieldError[]
  /** The method and path of the request that failed. */
  readonly request: string

  constructor(request: string, status: number, doc: ProblemDocument) {
    super(`${request}: ${status} ${doc.title ?? ''}${doc.detail ? ': ' + doc.detail : ''}`)
    this.name = 'FieldcrmProblemError'
    this.request = request
    this.status = status
    this.type = doc.type ?? 'about:blank'
    this.title = doc.title ?? ''
    this.detail = doc.detail ?? ''
    this.errors = Array.isArray(doc.errors) ? doc.errors : []
  }

  /** The session is over for good: the user must sign in again. */
  get isSessionRevoked(): boolean {
    return this.status === 401 && this.type === ProblemTypes.sessionRevoked
  }

  /** The access token expired: a refresh fixes it. */
  get isTokenExpired(): boolean {
    return this.status === 401 && this.type === ProblemTypes.tokenExpired
  }
}

/** The JSON body of an error answer (RFC 9457). */
export interface ProblemDocument {
  type?: string
  title?: string
  status?: number
  detail?: string
  errors?: FieldError[]
}

/** problemOf reads a failed response's problem document into an error. */
export async function problemOf(request: string, res: Response): Promise<FieldcrmProblemError> {
  const text = await res.text()
  let doc: ProblemDocument = { title: res.statusText, detail: text.slice(0, 500) }
  try {
    const parsed: unknown = JSON.parse(text)
    if (parsed && typeof parsed === 'object') doc = parsed as ProblemDocument
  } catch {
    // not JSON (a proxy's error page): keep the text as the detail
  }
  return new FieldcrmProblemError(request, res.status, doc)
}
