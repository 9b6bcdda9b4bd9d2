import type { Database } from '@nozbe/watermelondb'

import { Customer, Interaction, Q, Task } from '../generated/models'

/** The most customers the list shows at once; the search narrows it. */
export const customerListLimit = 100

/**
 * searchCustomers lists the customers on the device by name, those whose
 * name, number or phone numbers contain the text when one is
 * given. It reads the local database only: it works offline.
 */
export function searchCustomers(db: Database, text: string, limit = customerListLimit): Promise<Customer[]> {
  const words = text.trim()
  const clauses = [Q.sortBy('name', Q.asc), Q.take(limit)]
  if (words === '') return db.get<Customer>('customers').query(...clauses).fetch()
  const pattern = `%${Q.sanitizeLikeString(words)}%`
  // Phones are stored as JSON text; a number typed without its spaces
  // still matches one stored with them through its digits alone.
  const digits = words.replace(/\D/g, '')
  const phoneClauses = [Q.where('phones', Q.like(pattern))]
  if (digits.length >= 3 && digits !== words) phoneClauses.push(Q.where('phones', Q.like(`%${digits}%`)))
  return db
    .get<Customer>('customers')
    .query(Q.or(Q.where('name', Q.like(pattern)), Q.where('number', Q.like(pattern)), ...phoneClauses), ...clauses)
    .fetch()
}

/** One line of a customer's timeline: an interaction or a task. */
export interface TimelineEntry {
  kind: 'interaction' | 'task'
  id: string
  /** When it happened (interactions) or is due (tasks), ms since the epoch. */
  at: number
  title: string
  detail: string
  /** The record was changed on this device and not yet synced. */
  unsynced: boolean
}

export interface CustomerTimeline {
  customer: Customer
  entries: TimelineEntry[]
}

/** customerTimeline is a customer with its interactions and tasks, newest first. */
export async function customerTimeline(db: Database, customerId: string): Promise<CustomerTimeline> {
  const customer = await db.get<Customer>('customers').find(customerId)
  const [interactions, tasks] = await Promise.all([
    db.get<Interaction>('interactions').query(Q.where('customer_id', customerId)).fetch(),
    db.get<Task>('tasks').query(Q.where('customer_id', customerId)).fetch(),
  ])
  const entries: TimelineEntry[] = [
    ...interactions.map((i): TimelineEntry => ({
      kind: 'interaction',
      id: i.id,
      at: i.occurredAt?.getTime() ?? 0,
      title: i.checkIn ? `${i.channel} (checked in)` : i.channel,
      detail: [i.content, i.outcome].filter(Boolean).join(' · '),
      unsynced: i.syncStatus !== 'synced',
    })),
    ...tasks.map((t): TimelineEntry => ({
      kind: 'task',
      id: t.id,
      at: t.dueAt?.getTime() ?? 0,
      title: `${t.title} [${t.status}]`,
      detail: t.notes,
      unsynced: t.syncStatus !== 'synced',
    })),
  ]
  entries.sort((a, b) => b.at - a.at || a.id.localeCompare(b.id))
  return { customer, entries }
}
