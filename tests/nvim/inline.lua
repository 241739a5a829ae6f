-- inline.lua — Neovim's own LSP client (vim.lsp, nvim >= 0.7) against
-- `nib lsp`: attach to a buffer, edit it (incremental didChange, UTF-16
-- positions across multi-byte characters), compare the server's copy of the
-- text, request an inline completion and check its shape. Exits 0 on
-- success, 1 on failure.

local nib = os.getenv('NIB_BINARY')
local model = os.getenv('NIB_TEST_MODEL')

local function fail(msg)
  io.stderr:write('FAIL: ' .. msg .. '\n')
  vim.cmd('cquit 1')
end

local function check(cond, msg)
  if not cond then fail(msg) end
end

local ok, err = pcall(function()
  check(nib and nib ~= '', 'NIB_BINARY is not set')
  local initialized = false
  local id = vim.lsp.start_client({
    name = 'nib',
    cmd = { nib, 'lsp', '--log-level', 'warn' },
    root_dir = vim.fn.getcwd(),
    init_options = { model = model, maxTokens = 8, threads = 1, contextBudget = 256, debounceMs = 0 },
    on_init = function() initialized = true end,
  })
  check(id, 'start_client failed')
  check(vim.wait(10000, function() return initialized end, 20), 'initialize timed out')
  local client = vim.lsp.get_client_by_id(id)

  local buf = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_buf_set_name(buf, vim.fn.tempname() .. '.py')
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, {
    'import math', '', 'def add(a, b):', '    s = "é😀"', '    ret',
  })
  vim.bo[buf].filetype = 'python'
  vim.lsp.buf_attach_client(buf, id)

  -- Edits: insert after the emoji (byte column 15, UTF-16 column 12),
  -- add and delete lines.
  vim.api.nvim_buf_set_text(buf, 3, 15, 3, 15, { 'x' })
  vim.api.nvim_buf_set_lines(buf, 1, 1, false, { '# comment ü' })
  vim.api.nvim_buf_set_lines(buf, 0, 1, false, {})
  vim.api.nvim_buf_set_text(buf, 3, 0, 3, 4, { '\t' })
  vim.wait(400) -- let the debounced didChange go out

  local uri = vim.uri_from_bufnr(buf)
  local res = client.request_sync('nib/_documentText', { uri = uri }, 5000, buf)
  check(res and res.result, 'nib/_documentText failed: ' .. vim.inspect(res))
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local want = table.concat(lines, '\n') .. '\n'
  check(res.result.text == want,
    'server text differs:\n' .. vim.inspect(res.result.text) .. '\nvs\n' .. vim.inspect(want))

  local status = client.request_sync('workspace/executeCommand', { command = 'nib.status' }, 5000, buf)
  check(status and status.result, 'nib.status failed')
  check(vim.wait(20000, function()
    local s = client.request_sync('workspace/executeCommand', { command = 'nib.status' }, 5000, buf)
    return s and s.result and s.result.modelState == 'ready'
  end, 50), 'model did not load')

  local last = #lines - 1
  local col = #lines[#lines] -- ASCII line: bytes == UTF-16 units
  local params = {
    textDocument = { uri = uri },
    position = { line = last, character = col },
    context = { triggerKind = 1 },
  }
  local r = client.request_sync('textDocument/inlineCompletion', params, 20000, buf)
  check(r and r.result and not r.err, 'inlineCompletion failed: ' .. vim.inspect(r))
  local items = r.result.items
  check(type(items) == 'table' and #items >= 1, 'no items: ' .. vim.inspect(r.result))
  for _, it in ipairs(items) do
    check(type(it.insertText) == 'string', 'insertText is not a string')
    check(it.range.start.line == last and it.range.start.character == col, 'bad range start')
    check(it.range['end'].line == last and it.range['end'].character == col, 'bad range end')
  end
  io.stderr:write(('nvim: %d item(s), first %q\n'):format(#items, items[1].insertText))

  -- The classic fallback older Neovim versions use.
  local cr = client.request_sync('textDocument/completion', params, 20000, buf)
  check(cr and cr.result and not cr.err, 'completion failed: ' .. vim.inspect(cr))
  local citems = cr.result.items
  check(#citems <= 1, 'more than one classic item')
  if #citems == 1 then
    check(citems[1].filterText == 'ret', 'filterText: ' .. tostring(citems[1].filterText))
    check(type(citems[1].textEdit.newText) == 'string', 'textEdit.newText')
  end

  vim.lsp.stop_client(id)
  check(vim.wait(5000, function() return vim.lsp.get_client_by_id(id) == nil end, 20), 'server did not stop')
end)

if not ok then fail(tostring(err)) end
io.stderr:write('PASS\n')
vim.cmd('qall!')
