// The SKUs a store sells, for pickers (campaign items), at the chain's list price: a
// campaign price is a discount on it.
import { gql } from './client'

export interface SkuOption {
  id: string
  label: string
  priceFen: number
  price: string
}

const MENU = `query MenuSkus($storeId: ID!) {
  pickup: menu(storeId: $storeId, channel: PICKUP) { categories { products { name skus { id name basePrice { fen display } } } } }
  delivery: menu(storeId: $storeId, channel: DELIVERY) { categories { products { name skus { id name basePrice { fen display } } } } }
}`

interface MenuAnswer {
  categories: { products: { name: string; skus: { id: string; name: string; basePrice: { fen: number; display: string } }[] }[] }[]
}

export async function storeSkus(storeId: string): Promise<SkuOption[]> {
  const data = await gql<{ pickup: MenuAnswer | null; delivery: MenuAnswer | null }>(MENU, { storeId })
  const found = new Map<string, SkuOption>()
  for (const menu of [data.pickup, data.delivery]) {
    for (const category of menu?.categories ?? []) {
      for (const product of category.products) {
        for (const sku of product.skus) {
          const label = sku.name && sku.name !== product.name ? `${product.name} · ${sku.name}` : product.name
          found.set(sku.id, { id: sku.id, label, priceFen: sku.basePrice.fen, price: sku.basePrice.display })
        }
      }
    }
  }
  return [...found.values()].sort((a, b) => a.label.localeCompare(b.label))
}

export const yuanToFen = (yuan: number | null | undefined) => Math.round((yuan ?? 0) * 100)
