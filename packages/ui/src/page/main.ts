/** The page's entry point (bundled into app.js). */
import { App } from './app';

const root = document.getElementById('app');
if (root) new App(root).start();
