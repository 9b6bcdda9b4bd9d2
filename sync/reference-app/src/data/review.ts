import type { Database } from '@nozbe/watermelondb'
import type { RejectedRecord } from '@fieldcrm/watermelondb'

import { Conflict, Q } from '../generated/models'
import type { Session } from './session'

/** A record the server refused, as the rejected list shows it. */
export interface RejectedItem extends RejectedRecord {
  /** What the record is, in a few words (its name, title or content). */
  label: string
}

/**
 * rejectedItems lists the records the server refused that the device still
 * holds unpushed: editing one pushes it again at the next sync.
 */
export async function rejectedItems(session: Session): Promise<RejectedItem[]> {
  const records = await session.rejectedRecords()
  return Promise.all(records.map(async (r) => ({ ...r, label: await labelOf(session.database, r.table, r.id) })))
}

async function labelOf(db: Database, table: string, id: string): Promise<string> {
  try {
    const raw = (await db.get(table).find(id))._raw as unknown as Record<string, unknown>
    for (const column of ['name', 'title', 'content']) {
      if (typeof raw[column] === 'string' && raw[column] !== '') return raw[column] as string
    }
  } catch {
    // Deleted on the device since: the id is all there is.
  }
  return `${table} ${id}`
}

/** openConflicts lists the conflicts synced to the device not yet resolved, newest first. */
export function openConflicts(db: Database): Promise<Conflict[]> {
  return db.get<Conflict>('conflicts').query(Q.where('resolution', ''), Q.sortBy('server_at', Q.desc)).fetch()
}

/**
 * resolveConflict keeps the value the policy kept or reverts to the other
 * one, then syncs: the resolution (and a reverted value) comes back by pull.
 */
export async function resolveConflict(session: Session, conflictId: string, action: 'keep' | 'revert'): Promise<void> {
  await session.client.resolveConflict(conflictId, action)
  await session.sync()
}
