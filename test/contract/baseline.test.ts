import { defineContract } from './contract.js';

defineContract('baseline');
