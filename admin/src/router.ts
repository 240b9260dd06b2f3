import { createRouter, createWebHistory } from 'vue-router'
import { isHeadOffice, session } from './api/session'

export const router = createRouter({
  history: createWebHistory('/admin/'),
  routes: [
    { path: '/', redirect: '/stock' },
    { path: '/login', component: () => import('./pages/LoginPage.vue'), meta: { public: true } },
    { path: '/change-password', component: () => import('./pages/ChangePasswordPage.vue') },
    { path: '/stock', component: () => import('./pages/StockPage.vue') },
    { path: '/orders', component: () => import('./pages/OrdersPage.vue') },
    { path: '/deliveries', component: () => import('./pages/DeliveriesPage.vue') },
    { path: '/campaigns', component: () => import('./pages/CampaignsPage.vue') },
    { path: '/coupons', component: () => import('./pages/CouponsPage.vue') },
    { path: '/products', component: () => import('./pages/ProductsPage.vue') },
    { path: '/members', component: () => import('./pages/MembersPage.vue') },
    { path: '/staff', component: () => import('./pages/StaffPage.vue') },
    // Head office and operators only: not in a store manager's menu, and not opened by address.
    { path: '/search', component: () => import('./pages/SearchPage.vue'), meta: { headOffice: true } },
    { path: '/:rest(.*)*', redirect: '/stock' },
  ],
})

router.beforeEach((to) => {
  if (!to.meta.public && !session.staff) return { path: '/login', query: { next: to.fullPath } }
  if (to.path === '/login' && session.staff) return { path: '/stock' }
  // An account with a temporary password changes it before anything else.
  if (session.staff?.mustChangePassword && to.path !== '/change-password') {
    return { path: '/change-password', query: { next: to.fullPath } }
  }
  if (to.path === '/change-password' && session.staff && !session.staff.mustChangePassword && !to.query.own) {
    return { path: '/stock' }
  }
  if (to.meta.headOffice && !isHeadOffice()) return { path: '/stock' }
  return true
})
