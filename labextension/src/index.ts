/**
 * The nbkeras JupyterLab plugin: a left-sidebar panel listing trained models
 * and their runs with live metrics, read from nbkeras' server extension.
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Clipboard, Dialog, ICommandPalette, showDialog } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { LabIcon } from '@jupyterlab/ui-components';

import { modelCell, relativePath } from './model';
import { RunsPanel } from './RunsPanel';
import { RunsStore } from './store';
import { CommandIDs, PANEL_ID, PLUGIN_ID } from './tokens';

const kerasIcon = new LabIcon({
  name: 'nbkeras:runs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M3 3h4v7.2L13.4 3H18l-7.1 7.7L18.6 21H13.8l-5.6-7.9L7 14.4V21H3z"/>' +
    '<circle cx="19.5" cy="5" r="2.5"/>' +
    '</g></svg>'
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A sidebar listing nbkeras models and runs with live metrics.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const store = new RunsStore();
    const serverRoot = PageConfig.getOption('serverRoot');
    const panel = new RunsPanel(store, {
      copySpec: async detail => {
        Clipboard.copyToSystem(modelCell(detail.model, detail.spec ?? ''));
      },
      openNotebook: path => {
        void app.commands.execute('docmanager:open', { path });
      },
      notebookPath: path => relativePath(path, serverRoot),
      confirm: async (title, body, accept) => {
        const result = await showDialog({
          title,
          body,
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: accept })]
        });
        return result.button.accept;
      }
    });
    panel.id = PANEL_ID;
    panel.title.icon = kerasIcon;
    panel.title.caption = 'Keras runs';
    app.shell.add(panel, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(panel, PANEL_ID);
    }

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show Keras Runs',
      caption: 'Show the models and runs nbkeras recorded',
      execute: () => app.shell.activateById(PANEL_ID)
    });
    app.commands.addCommand(CommandIDs.copySpec, {
      label: 'Copy Selected Run as %%model Cell',
      isEnabled: () => store.detail?.spec != null,
      execute: () => {
        const detail = store.detail;
        if (detail?.spec) {
          Clipboard.copyToSystem(modelCell(detail.model, detail.spec));
        }
      }
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.open, category: 'nbkeras' });
      palette.addItem({ command: CommandIDs.copySpec, category: 'nbkeras' });
    }
  }
};

export default plugin;
