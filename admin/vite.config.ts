import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// Served by `dinegraph serve` at /admin; `npm run dev` proxies the API to a local server.
export default defineConfig({
  base: '/admin/',
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      output: {
        manualChunks: { 'element-plus': ['element-plus'], echarts: ['echarts/core'] },
      },
    },
  },
  server: {
    proxy: { '/graphql': { target: 'http://127.0.0.1:8000', ws: true } },
  },
})
