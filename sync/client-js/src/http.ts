import { Credentials, Fetch } from './credentials'
import { FieldcrmProblemError, problemOf } from './errors'

/**
 * Api sends authenticated requests. On /problems/token-expired it refreshes
 * the access token once (concurrent requests share that one refresh) and
 * sends the request again; on /problems/session-revoked, or a refresh the
 * server refuses, it calls credentials.onSignedOut once and throws.
 */
export class Api {
  private refreshing: Promise<string> | null = null
  private signedOut = false
  /** How many times refresh() was called: for tests and diagnostics. */
  refreshes = 0

  constructor(
    readonly baseUrl: string,
    private readonly credentials: Credentials,
    private readonly fetchFn: Fetch,
  ) {}

  /** request returns the response of a 2xx answer and throws FieldcrmProblemError otherwise. */
  async request(method: string, path: string, body?: unknown): Promise<Response> {
    const what = `${method} ${path.split('?')[0]}`
    let token = await this.credentials.getAccessToken()
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {}
      if (token) headers.Authorization = 'Bearer ' + token
      if (body !== undefined) headers['Content-Type'] = 'application/json'
      const res = await this.fetchFn(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      if (res.ok) return res
      const problem = await problemOf(what, res)
      if (problem.isTokenExpired && attempt === 0) {
        token = await this.freshToken(token ?? null)
        continue
      }
      if (problem.isSessionRevoked) await this.endSession(problem)
      throw problem
    }
  }

  /** json is request's body as JSON. */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body)
    return (await res.json()) as T
  }

  /**
   * freshToken returns an access token newer than stale: the one another
   * request's refresh already brought, the one of the refresh under way, or
   * that of a new refresh, never two at a time.
   */
  private async freshToken(stale: string | null): Promise<string> {
    if (!this.refreshing) {
      const current = await this.credentials.getAccessToken()
      if (current && current !== stale) return current
      this.refreshes++
      this.refreshing = this.credentials.refresh().finally(() => {
        this.refreshing = null
      })
    }
    try {
      return await this.refreshing
    } catch (err) {
      if (err instanceof FieldcrmProblemError && err.status === 401) await this.endSession(err)
      throw err
    }
  }

  private async endSession(problem: FieldcrmProblemError): Promise<void> {
    if (this.signedOut) return
    this.signedOut = true
    await this.credentials.onSignedOut(problem)
  }
}
