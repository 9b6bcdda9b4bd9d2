import type { Database } from '@nozbe/watermelondb'
import { createSync, signIn, tokenCredentials } from '@fieldcrm/watermelondb'
import type { FieldcrmSync, RejectedRecord, SyncProgress, SyncReport, Tokens } from '@fieldcrm/watermelondb'

/** What the sync banner and the first-sync screen show. */
export interface SyncState {
  status: 'idle' | 'syncing' | 'synced' | 'failed'
  /** The sync running (or the last one) started from an empty database. */
  firstSync: boolean
  /** Records received so far in the sync running, and how many are expected. */
  done: number
  expected: number
  pages: number
  /** When the last sync finished well (ms since the epoch), null before. */
  lastSyncedAt: number | null
  error: string | null
}

/** Where the app keeps the tokens between launches (secure storage on a phone). */
export interface TokenStore {
  save(tokens: Tokens): Promise<void>
}

export interface SessionOptions {
  baseUrl: string
  database: Database
  /** One id per installation. */
  deviceId: string
  tokens: TokenStore
  /** The session is over for good: show the sign-in screen. */
  onSignedOut: () => void
}

/**
 * Session is one signed-in user on this device: the sync client, the sync
 * state the screens observe, and the records the server refused.
 */
export class Session {
  private state: SyncState = { status: 'idle', firstSync: false, done: 0, expected: 0, pages: 0, lastSyncedAt: null, error: null }
  private readonly listeners = new Set<(state: SyncState) => void>()

  private constructor(
    readonly client: FieldcrmSync,
    readonly database: Database,
  ) {}

  /** signIn signs the user in on this device and wires the sync client. */
  static async signIn(opts: SessionOptions, email: string, password: string): Promise<Session> {
    const tokens = await signIn(opts.baseUrl, { email, password, deviceId: opts.deviceId })
    await opts.tokens.save(tokens)
    return Session.resume(opts, tokens)
  }

  /** resume continues a session with tokens kept from an earlier launch. */
  static resume(opts: SessionOptions, tokens: Tokens): Session {
    let session: Session | null = null
    const client = createSync({
      baseUrl: opts.baseUrl,
      database: opts.database,
      deviceId: opts.deviceId,
      credentials: tokenCredentials({
        baseUrl: opts.baseUrl,
        tokens,
        onTokens: (fresh) => opts.tokens.save(fresh),
        onSignedOut: () => opts.onSignedOut(),
      }),
      onProgress: (p) => session?.progressed(p),
    })
    session = new Session(client, opts.database)
    return session
  }

  get syncState(): SyncState {
    return this.state
  }

  /** subscribe calls listener on every change of the sync state; it returns the unsubscribe. */
  subscribe(listener: (state: SyncState) => void): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  /**
   * sync pulls and pushes; the state tells the screens how far it is. A
   * failure is kept in the state (the data stays on the device) and thrown.
   */
  async sync(): Promise<SyncReport> {
    this.set({ status: 'syncing', done: 0, expected: 0, pages: 0, error: null })
    try {
      const report = await this.client.sync()
      this.set({ status: 'synced', lastSyncedAt: Date.now() })
      return report
    } catch (err) {
      this.set({ status: 'failed', error: err instanceof Error ? err.message : String(err) })
      throw err
    }
  }

  /** Records the server refused that the device still holds unpushed, with its reasons. */
  rejectedRecords(): Promise<RejectedRecord[]> {
    return this.client.rejectedRecords()
  }

  /**
   * signOut pushes what is still unpushed (when the server is reachable),
   * ends the session and empties the database, so that the next user of the
   * phone starts from nothing.
   */
  async signOut(): Promise<void> {
    try {
      await this.sync()
    } catch {
      // Offline: the edits are lost with the database, as signing out says.
    }
    await this.client.signOut()
    await this.database.write(() => this.database.unsafeResetDatabase())
  }

  private progressed(p: SyncProgress): void {
    this.set({ firstSync: p.firstSync, done: p.done, expected: p.expected, pages: p.pages })
  }

  private set(change: Partial<SyncState>): void {
    this.state = { ...this.state, ...change }
    for (const listener of this.listeners) listener(this.state)
  }
}

/** progressFraction is how far a sync is, from 0 to 1, for a progress bar. */
export function progressFraction(state: SyncState): number {
  if (state.status === 'synced') return 1
  return state.expected > 0 ? Math.min(1, state.done / state.expected) : 0
}
