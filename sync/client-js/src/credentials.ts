import { FieldcrmProblemError, problemOf } from './errors'

/** What the server answers a sign-in or a refresh. */
export interface Tokens {
  access_token: string
  refresh_token: string
  token_type: string
  /** Seconds the access token lives (15 minutes). */
  expires_in: number
}

/**
 * Credentials are how the client gets, renews and gives up the user's
 * session. The client calls refresh() at most once at a time, only after the
 * server said the access token expired, and never again with the same refresh
 * token: two refreshes with one refresh token would revoke the session.
 */
export interface Credentials {
  /** The current access token (null or undefined: not signed in). */
  getAccessToken(): string | null | undefined | Promise<string | null | undefined>
  /**
   * Exchanges the refresh token for new tokens, keeps them, and returns the
   * new access token. A FieldcrmProblemError with status 401 means the
   * session is over: the client then calls onSignedOut.
   */
  refresh(): Promise<string>
  /** The session was revoked, ended or expired for good: sign in again. */
  onSignedOut(problem: FieldcrmProblemError): void | Promise<void>
}

/** The fetch function the client uses (the global one unless given). */
export type Fetch = (input: string, init?: RequestInit) => Promise<Response>

function globalFetch(): Fetch {
  if (typeof globalThis.fetch !== 'function') throw new Error('@fieldcrm/watermelondb needs a global fetch, or pass one as `fetch`')
  return (input, init) => globalThis.fetch(input, init)
}

async function postJSON<T>(fetchFn: Fetch, baseUrl: string, path: string, body: unknown): Promise<T> {
  const res = await fetchFn(baseUrl + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!res.ok) throw await problemOf('POST ' + path, res)
  return (await res.json()) as T
}

/** Sign-in of a user on a device (the device id names this installation). */
export interface SignIn {
  email: string
  password: string
  /** One id per installation: sync state and push registration hang on it. */
  deviceId: string
}

/** signIn exchanges an e-mail and password for tokens (POST /v1/auth/login). */
export function signIn(baseUrl: string, login: SignIn, fetchFn: Fetch = globalFetch()): Promise<Tokens> {
  return postJSON<Tokens>(fetchFn, baseUrl, '/v1/auth/login', { email: login.email, password: login.password, device_id: login.deviceId })
}

/** refreshTokens exchanges a refresh token, once, for new tokens (POST /v1/auth/refresh). */
export function refreshTokens(baseUrl: string, refreshToken: string, fetchFn: Fetch = globalFetch()): Promise<Tokens> {
  return postJSON<Tokens>(fetchFn, baseUrl, '/v1/auth/refresh', { refresh_token: refreshToken })
}

/** Options of tokenCredentials. */
export interface TokenCredentialsOptions {
  baseUrl: string
  /** The tokens of the sign-in (or of the last refresh, kept by the app). */
  tokens: Tokens
  /** Called with every new pair of tokens: keep them (e.g. in the keychain). */
  onTokens?: (tokens: Tokens) => void | Promise<void>
  onSignedOut: (problem: FieldcrmProblemError) => void | Promise<void>
  fetch?: Fetch
}

/**
 * tokenCredentials are Credentials over a pair of tokens held in memory and
 * renewed through POST /v1/auth/refresh; onTokens lets the app persist them.
 */
export function tokenCredentials(opts: TokenCredentialsOptions): Credentials {
  let tokens = opts.tokens
  const fetchFn = opts.fetch ?? globalFetch()
  return {
    getAccessToken: () => tokens.access_token,
    async refresh() {
      tokens = await refreshTokens(opts.baseUrl, tokens.refresh_token, fetchFn)
      if (opts.onTokens) await opts.onTokens(tokens)
      return tokens.access_token
    },
    onSignedOut: (problem) => opts.onSignedOut(problem),
  }
}

export { globalFetch }
