import { useEffect, useState } from 'react'
import { FlatList, Pressable, Text, TextInput, View } from 'react-native'
import type { Database } from '@nozbe/watermelondb'

import { searchCustomers } from '../data'
import type { Customer } from '../generated/models'
import { styles } from './styles'

export interface CustomersScreenProps {
  database: Database
  onOpen: (customerId: string) => void
  /** Changes when a sync finished, to read the list again. */
  refreshKey: number
}

/** CustomersScreen lists the customers on the device, searched by name, number or phone. */
export function CustomersScreen({ database, onOpen, refreshKey }: CustomersScreenProps) {
  const [text, setText] = useState('')
  const [customers, setCustomers] = useState<Customer[]>([])

  useEffect(() => {
    let current = true
    searchCustomers(database, text).then((list) => current && setCustomers(list))
    return () => {
      current = false
    }
  }, [database, text, refreshKey])

  return (
    <View style={{ flex: 1 }}>
      <TextInput style={styles.input} placeholder="Search by name, number or phone" value={text} onChangeText={setText} clearButtonMode="while-editing" />
      <FlatList
        data={customers}
        keyExtractor={(c) => c.id}
        renderItem={({ item }) => (
          <Pressable style={styles.row} onPress={() => onOpen(item.id)}>
            <Text style={styles.rowTitle}>{item.name}</Text>
            <Text style={styles.rowDetail}>
              {[item.number, item.phones[0]?.number].filter(Boolean).join(' · ')}
            </Text>
          </Pressable>
        )}
        ListEmptyComponent={<Text style={styles.rowDetail}>No customers match.</Text>}
      />
    </View>
  )
}
