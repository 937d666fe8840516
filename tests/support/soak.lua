-- wrk script of scripts/soak: each connection waits 100 ms between requests (a page
-- that many operators keep open and reload), not a flood.
function delay()
  return 100
end
